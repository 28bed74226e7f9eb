//! The demo on a real bundle: held-out inputs translated A→B with DDIB, OT-ALD and the neural OT
//! map (those the bundle has) at the same T and K, a side-by-side grid (source | DDIB | OT-ALD |
//! neural OT), and DPM-OT generation at 10 NFE.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use brenier::io::write_atomic;
use brenier::pipeline::{GenerateMethod, GenerateOptions, Silent, TranslateMethod, TranslateOptions};
use brenier::NetKey;

use super::args::{Args, SHIPPED_INPUTS};
use super::grid::grid;
use crate::cmd::common::{ms, RunArgs};
use crate::images::read_inputs;

pub fn run(a: &Args, bundle: &Path) -> Result<()> {
    std::fs::create_dir_all(&a.out)?;
    let run = RunArgs { bundle: bundle.to_path_buf(), threads: Some(a.threads), ..RunArgs::default() };
    let t0 = Instant::now();
    let run = run.resolve()?;
    let engine = run.open()?;
    let m = engine.bundle().manifest().clone();
    let inputs = a.inputs.clone().unwrap_or_else(|| PathBuf::from(SHIPPED_INPUTS));
    let input = read_inputs(&inputs, &m, false).with_context(|| format!("demo inputs {}", inputs.display()))?;
    run.check_budget(&engine, input.count)?;
    println!(
        "{} ({} → {}), {} input(s) from {}",
        bundle.display(),
        m.domains.a,
        m.domains.b,
        input.count,
        inputs.display()
    );
    let steps = a.steps.unwrap_or(m.steps);
    let mut results = vec![];
    // Every method the bundle has a plan for at its own T and K, in the grid's column order.
    let mut methods = vec![];
    for method in TranslateMethod::ALL {
        let opts = TranslateOptions { method, steps: Some(steps), t: Some(m.t_encode), ..TranslateOptions::default() };
        match engine.plan_if_present(&opts)? {
            Some(_) => methods.push(method),
            None if method == TranslateMethod::OtAld => println!("  (the bundle has no a->b OT map: no OT-ALD)"),
            None => {}
        }
    }
    for &method in &methods {
        let opts = TranslateOptions { method, steps: Some(steps), t: Some(m.t_encode), ..TranslateOptions::default() };
        let s = Instant::now();
        let r = engine.translate(&input.data, &opts, &Silent)?;
        results.push((method, r, s.elapsed().as_secs_f64()));
    }
    let gen = engine.generate(
        &GenerateOptions {
            method: GenerateMethod::DpmOt,
            domain: NetKey::B,
            count: a.generate.max(1),
            nfe: 10,
            eta: 0.0,
            tau: None,
            seed: 0,
        },
        &Silent,
    );
    println!("  {:<10} {:>5} {:>6} {:>14} {:>14}", "method", "T", "NFE", "total", "per image");
    for (method, r, s) in &results {
        println!(
            "  {:<10} {:>5} {:>6} {:>14} {:>14}",
            method.to_string(),
            r.t,
            r.nfe,
            ms(*s),
            ms(s / input.count as f64)
        );
    }
    let grid_path = a.out.join("translate-grid.png");
    let mut columns: Vec<&[f32]> = vec![&input.data];
    columns.extend(results.iter().map(|r| r.1.images.as_slice()));
    write_atomic(&grid_path, &grid(&columns, input.count, m.image, m.normalization, 4)?)?;
    let labels: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
    println!("  wrote {} (rows: source | {})", grid_path.display(), labels.join(" | "));
    match gen {
        Ok(g) => {
            let path = a.out.join("generate-dpm-ot.png");
            write_atomic(&path, &grid(&[&g.images], g.images.len() / m.image.elems(), m.image, m.normalization, 4)?)?;
            println!(
                "  DPM-OT: {} image(s) of {} in {} NFE, {} → {}",
                a.generate.max(1),
                m.domains.b,
                g.nfe,
                ms(g.decode.seconds + g.map.seconds),
                path.display()
            );
        }
        Err(e) => println!("  DPM-OT skipped: {e}"),
    }
    println!("  total {}", ms(t0.elapsed().as_secs_f64()));
    Ok(())
}
