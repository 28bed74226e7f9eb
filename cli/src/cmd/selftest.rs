//! `brenier selftest`: on the device, repeat the quick calibration recorded in the bundle and
//! compare; PASS/FAIL per check, non-zero exit on any FAIL.

use anyhow::Result;

use brenier_calibration::selftest::Status;

use super::common::RunArgs;

/// Re-check a calibrated bundle on this device.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  brenier selftest --bundle assets/demo.brn\n  brenier selftest --bundle model.brn --precision f16 --json"
)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let run = a.run.resolve()?;
    let engine = run.open()?;
    // The quick check runs its inputs as one batch.
    run.check_budget(&engine, brenier_calibration::quick::QUICK_COUNT)?;
    let (record, checks) = brenier_calibration::selftest::selftest(&engine)?;
    let failed = checks.iter().filter(|c| c.failed()).count();
    let skipped = checks.iter().filter(|c| c.status == Status::Skip).count();
    if a.json {
        let device = engine.backend().device();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "checks": checks, "failed": failed, "skipped": skipped, "device": device })
            )?
        );
    } else {
        println!(
            "selftest of {} on {} ({} threads, {}), record from {} {}",
            a.run.bundle.display(),
            engine.backend().name(),
            engine.backend().threads(),
            engine.backend().precision(),
            record.machine.arch,
            record.machine.cpu
        );
        if let Some(d) = engine.backend().device() {
            println!("  device: {d}");
        }
        for c in &checks {
            println!("  {}  {:<44} {}  (limit {})", c.status.as_str(), c.name, c.measured, c.limit);
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} selftest checks failed", checks.len());
    if !a.json {
        let judged = checks.iter().filter(|c| matches!(c.status, Status::Pass | Status::Fail)).count();
        match skipped {
            0 => println!("all {judged} checks passed"),
            s => println!("all {judged} judged checks passed; {s} skipped (nothing recorded to compare with)"),
        }
    }
    Ok(())
}
