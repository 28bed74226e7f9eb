"""OT-ALD (T = 500) against DDIB (T = 999, K = 100) at equal quality, from the calibration
record's T×K sweep (both measured by `brenier calibrate` in the same run on this machine): the
fewest-NFE OT-ALD point whose Fréchet distance is no worse than DDIB's and whose target-class
accuracy is within 0.01 of it; prints the NFE ratio and the time ratio DDIB/OT-ALD."""
import json
import sys

rec = json.load(open(sys.argv[1])).get("calibration")
if not rec or not rec.get("sweep"):
    sys.exit("the bundle has no calibration sweep: run `brenier calibrate --bundle BUNDLE` first")
sweep = rec["sweep"]
base = [p for p in sweep if p["method"] == "ddib" and p["t"] == 999 and p["k"] == 100]
if not base:
    sys.exit("the sweep has no DDIB T=999 K=100 point")
base = base[0]
bq = base["quality"]
ok = [
    p for p in sweep
    if p["method"] == "ot-ald" and p["t"] == 500
    and p["quality"]["frechet"] <= bq["frechet"]
    and p["quality"]["target_accuracy"] >= bq["target_accuracy"] - 0.01
]
print(f"\nend to end at equal quality ({rec['machine']['cpu']}, {rec['machine']['threads']} threads, "
      f"{base['quality']['count']} held-out images)")
print(f"  DDIB   T=999 K=100: {base['nfe']:4d} NFE {base['ms_per_image']:8.1f} ms/img  "
      f"Fréchet {bq['frechet']:.2f}  acc {bq['target_accuracy']:.3f}")
if not ok:
    print("  no OT-ALD point at T=500 reaches that quality")
    sys.exit(0)
best = min(ok, key=lambda p: p["nfe"])
q = best["quality"]
print(f"  OT-ALD T=500 K={best['k']:<3}: {best['nfe']:4d} NFE {best['ms_per_image']:8.1f} ms/img  "
      f"Fréchet {q['frechet']:.2f}  acc {q['target_accuracy']:.3f}")
print(f"  NFE ratio DDIB/OT-ALD {base['nfe'] / best['nfe']:.1f}x, time ratio {base['ms_per_image'] / best['ms_per_image']:.1f}x")
