//! Where one network evaluation's time goes, per operator (`brenier bench --eval-only
//! --profile`): the answer a user needs before choosing a lever, and what the peer benchmark
//! sets beside onnxruntime's own profile of the same ONNX (benches/peers/profile.sh).

use std::collections::HashMap;
use std::time::Instant;

/// Time of one operator kind over a network's run: every node of that kind together.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpTime {
    /// The operator as the backend runs it (on the CPU, tract's optimised op name, or brenier's
    /// own operators: `WinogradConv`, `DirectConv`, `PointwiseConv`, `RowSum`).
    pub op: String,
    pub nodes: usize,
    /// Mean over the profiled runs, per run.
    pub ms: f64,
    /// Of the run's time spent in operators.
    pub share: f64,
}

/// Time of one node over a network's run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeTime {
    /// The node's name in the backend's graph (on the CPU, tract's: the ONNX node's name, with a
    /// suffix where tract made several nodes of one).
    pub name: String,
    pub op: String,
    pub ms: f64,
}

/// Per-operator time of `runs` evaluations of one piece (the images a plan runs at once).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpProfile {
    pub images_per_run: usize,
    pub runs: usize,
    /// Wall time per run, mean; `ops_ms` of it is inside operators (the rest is the state's own
    /// bookkeeping: inputs, outputs, freeing values).
    pub run_ms: f64,
    pub ops_ms: f64,
    /// Slowest first.
    pub ops: Vec<OpTime>,
    /// Every node, slowest first.
    pub nodes: Vec<NodeTime>,
}

/// Accumulates node times into an [`OpProfile`].
#[derive(Default)]
pub(crate) struct OpClock {
    by_node: HashMap<usize, NodeTime>,
    run_s: f64,
    runs: usize,
}

impl OpClock {
    /// Times `f`, the evaluation of node `node` (named `name`, an operator `op`), into the
    /// current run.
    pub(crate) fn time<R>(&mut self, node: usize, name: &str, op: &str, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let n = self.by_node.entry(node).or_insert_with(|| NodeTime { name: name.into(), op: op.into(), ms: 0.0 });
        n.ms += ms;
        r
    }

    /// Times a whole run (its nodes timed inside with [`OpClock::time`]).
    pub(crate) fn run<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let start = Instant::now();
        let r = f(self);
        self.run_s += start.elapsed().as_secs_f64();
        self.runs += 1;
        r
    }

    pub(crate) fn profile(self, images_per_run: usize) -> OpProfile {
        let runs = self.runs.max(1) as f64;
        let mut nodes: Vec<NodeTime> = self.by_node.into_values().map(|n| NodeTime { ms: n.ms / runs, ..n }).collect();
        let ops_ms: f64 = nodes.iter().map(|n| n.ms).sum();
        let mut by_op: HashMap<&str, (usize, f64)> = HashMap::new();
        for n in &nodes {
            let e = by_op.entry(&n.op).or_default();
            e.0 += 1;
            e.1 += n.ms;
        }
        let mut ops: Vec<OpTime> = by_op
            .into_iter()
            .map(|(op, (nodes, ms))| OpTime {
                op: op.into(),
                nodes,
                ms,
                share: if ops_ms > 0.0 { ms / ops_ms } else { 0.0 },
            })
            .collect();
        ops.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.op.cmp(&b.op)));
        nodes.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.name.cmp(&b.name)));
        OpProfile { images_per_run, runs: self.runs, run_ms: self.run_s / runs * 1e3, ops_ms, ops, nodes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_add_up_per_op_and_count_each_node_once() {
        let mut c = OpClock::default();
        for _ in 0..3 {
            c.run(|c| {
                c.time(0, "conv1", "MatMul", || std::thread::sleep(std::time::Duration::from_millis(2)));
                c.time(1, "add", "Add", || ());
                c.time(2, "conv2", "MatMul", || std::thread::sleep(std::time::Duration::from_millis(2)));
            });
        }
        let p = c.profile(1);
        assert_eq!(p.runs, 3);
        assert_eq!(p.ops[0].op, "MatMul");
        assert_eq!(p.ops[0].nodes, 2);
        assert_eq!(p.ops[1].nodes, 1);
        // Two sleeps of at least 2 ms per run, inside the run's wall time.
        assert!(p.ops[0].ms >= 4.0 && p.ops_ms <= p.run_ms, "{p:?}");
        let shares: f64 = p.ops.iter().map(|o| o.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert_eq!(p.nodes.len(), 3);
        assert_eq!(p.nodes[2].name, "add");
        assert!(p.nodes[..2].iter().all(|n| n.op == "MatMul" && n.ms >= 2.0), "{p:?}");
    }
}
