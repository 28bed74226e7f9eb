"""OT-ALD (at the bundle's T) against DDIB (T = 999, K = 100) at equal quality, from the calibration
record's T×K sweep (both measured by `brenier calibrate` in the same run on one machine): the
fewest-NFE OT-ALD point whose Fréchet distance is no worse than DDIB's and whose target-class
accuracy is within 0.03 of it (the slack the calibration's own recommendation allows, about two
of its 64 held-out images). Prints JSON: both points, the NFE ratio and the time ratio."""
import json
import sys

# calibration/src/recommend.rs, ACCURACY_SLACK.
ACCURACY_SLACK = 0.03

inspect = json.load(open(sys.argv[1]))
rec = inspect.get("calibration")
if inspect.get("calibration_error"):
    sys.exit(f"the bundle's calibration record is unreadable: {inspect['calibration_error']}")
if not rec or not rec.get("sweep"):
    sys.exit("the bundle has no calibration sweep: run `brenier calibrate --bundle BUNDLE` first")
t = inspect["manifest"]["t_encode"]
sweep = rec["sweep"]
base = [p for p in sweep if p["method"] == "ddib" and p["t"] == 999 and p["k"] == 100]
if not base:
    sys.exit("the sweep has no DDIB T=999 K=100 point")
base = base[0]
bq = base["quality"]
ok = [
    p for p in sweep
    if p["method"] == "ot-ald" and p["t"] == t
    and p["quality"]["frechet"] <= bq["frechet"]
    and p["quality"]["target_accuracy"] >= bq["target_accuracy"] - ACCURACY_SLACK
]


def point(p):
    q = p["quality"]
    return {"method": p["method"], "t": p["t"], "k": p["k"], "nfe": p["nfe"], "ms_per_image": p["ms_per_image"],
            "frechet": q["frechet"], "target_accuracy": q["target_accuracy"], "images": q["count"]}


out = {
    "rule": "fewest-NFE OT-ALD point at the bundle's T with Fréchet <= DDIB(999, 100)'s and accuracy >= its - 0.03",
    "record_machine": f"{rec['machine']['cpu']}, {rec['machine']['threads']} threads",
    "ddib": point(base),
    "ot_ald": None,
}
if ok:
    best = min(ok, key=lambda p: p["nfe"])
    out["ot_ald"] = point(best)
    out["nfe_ratio"] = base["nfe"] / best["nfe"]
    out["time_ratio"] = base["ms_per_image"] / best["ms_per_image"]
print(json.dumps(out, indent=2))
