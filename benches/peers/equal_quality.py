"""OT-ALD against DDIB at equal quality, from the calibration record's T×K sweep (both measured
by `brenier calibrate` in the same run on one machine), two ways:
- against the papers' DDIB baseline, T = 999 and K = 100: the fewest-NFE OT-ALD point at the
  bundle's T whose Fréchet distance is no worse than DDIB's and whose target-class accuracy is
  within 0.03 of it (the slack the calibration's own recommendation allows, about two of its 64
  held-out images);
- against the cheapest DDIB point of the whole sweep (any T, K) that reaches the quality of the
  fewest-NFE OT-ALD point: what DDIB needs at best for OT-ALD's quality.
Prints JSON: the points, and the NFE and time ratios DDIB/OT-ALD of each comparison (or why
there are none: a bundle without a calibration sweep)."""
import json
import sys

# calibration/src/recommend.rs, ACCURACY_SLACK.
ACCURACY_SLACK = 0.03

inspect = json.load(open(sys.argv[1]))
rec = inspect.get("calibration")
if inspect.get("calibration_error"):
    sys.exit(f"the bundle's calibration record is unreadable: {inspect['calibration_error']}")
if not rec or not rec.get("sweep"):
    # Nothing to compare: said in the results file rather than failing the speed comparison.
    print(json.dumps({"skipped": "the bundle has no calibration sweep (run `brenier calibrate --bundle BUNDLE`)"}))
    sys.exit(0)
t = inspect["manifest"]["t_encode"]
sweep = rec["sweep"]


def point(p):
    q = p["quality"]
    return {"method": p["method"], "t": p["t"], "k": p["k"], "nfe": p["nfe"], "ms_per_image": p["ms_per_image"],
            "frechet": q["frechet"], "target_accuracy": q["target_accuracy"], "images": q["count"]}


def at_least(p, ref):
    q, r = p["quality"], ref["quality"]
    return q["frechet"] <= r["frechet"] and q["target_accuracy"] >= r["target_accuracy"] - ACCURACY_SLACK


def cheapest(points):
    return min(points, key=lambda p: (p["nfe"], p["ms_per_image"])) if points else None


def comparison(rule, ddib, ot):
    return {"rule": rule, "ddib": point(ddib), "ot_ald": point(ot),
            "nfe_ratio": ddib["nfe"] / ot["nfe"], "time_ratio": ddib["ms_per_image"] / ot["ms_per_image"]}


out = {"record_machine": f"{rec['machine']['cpu']}, {rec['machine']['threads']} threads",
       "accuracy_slack": ACCURACY_SLACK, "papers_baseline": None, "cheapest_ddib": None}
ot_points = [p for p in sweep if p["method"] == "ot-ald" and p["t"] == t]
base = next((p for p in sweep if p["method"] == "ddib" and p["t"] == 999 and p["k"] == 100), None)
if base:
    ot = cheapest([p for p in ot_points if at_least(p, base)])
    if ot:
        out["papers_baseline"] = comparison(
            "fewest-NFE OT-ALD point at the bundle's T at least as good as DDIB(T=999, K=100)", base, ot)
ot = cheapest(ot_points)
if ot:
    ddib = cheapest([p for p in sweep if p["method"] == "ddib" and at_least(p, ot)])
    if ddib:
        out["cheapest_ddib"] = comparison(
            "fewest-NFE DDIB point of the whole sweep at least as good as the fewest-NFE OT-ALD point", ddib, ot)
print(json.dumps(out, indent=2))
