//! Where a convolution's pieces run: all on the calling thread, on the backend's rayon pool (a
//! one-piece run that splits tract's operators too, `intra_op.rs`), or on the crew on shift
//! (brenier's convolutions alone, `crew.rs`). Pieces write disjoint outputs, so the result is
//! the same bits however they are shared.

use rayon::prelude::*;

use crate::backend::crew::{Crew, Piece};

#[derive(Clone, Copy, Debug)]
pub enum Split<'a> {
    Serial,
    Pool(&'a rayon::ThreadPool),
    Crew(&'a Crew),
}

impl Split<'_> {
    /// Threads the pieces are shared among.
    pub fn threads(self) -> usize {
        match self {
            Split::Serial => 1,
            Split::Pool(pool) => pool.current_num_threads(),
            Split::Crew(crew) => crew.threads(),
        }
    }

    /// Calls `f(i)` for every `i` in `0..pieces` and returns when all are done.
    pub fn for_each(self, pieces: usize, f: &Piece<'_>) {
        match self {
            Split::Pool(pool) if pieces > 1 && pool.current_num_threads() > 1 => {
                pool.install(|| (0..pieces).into_par_iter().for_each(f))
            }
            Split::Crew(crew) => crew.for_each(pieces, f),
            _ => (0..pieces).for_each(f),
        }
    }
}

/// Runs `check` split every way a kernel can be: a 3-thread pool and a 3-thread crew on shift.
#[cfg(test)]
pub(super) fn each_split(check: impl Fn(Split)) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    check(Split::Pool(&pool));
    let crew = Crew::new(2).unwrap();
    crew.shift(|| check(Split::Crew(&crew)));
}
