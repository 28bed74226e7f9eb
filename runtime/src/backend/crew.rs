//! A crew: helper threads that stay awake through one network run (a shift), so that each of
//! brenier's convolutions hands its pieces out in well under a microsecond.
//!
//! Why not the rayon pool: one image of the demo UNet is 23 convolutions of 20–500 µs each.
//! Handing each to the pool wakes a sleeping thread every time (`pool.install` from outside the
//! pool parks the caller, injects the job and signals a worker), and split that way the step at
//! 2 threads took 1.08× the unsplit one's time (DESIGN, intra-op section). A crew wakes its
//! helpers once per run; between convolutions they spin (yielding now and then), as
//! onnxruntime's intra-op threads do by default, and the calling thread takes pieces too.
//!
//! The protocol, one job at a time, published by the thread on shift:
//! - the job (the piece function and the number of pieces) sits in one slot, rewritten only while
//!   `open` is false and no helper is inside it (`inside`, checked Dekker-style with `open`:
//!   a helper counts itself in before it reads `open`, the publisher closes before it reads
//!   `inside`, both sequentially consistent, so one of them sees the other);
//! - pieces are claimed from the `next` counter; a claim past the end claims nothing, so a
//!   helper that arrives late, or holds an old job's pointer, never calls it;
//! - the publisher runs pieces too, then waits until `done` counts them all; a panicking piece is
//!   caught where it ran and re-raised on the publisher once every piece is done, so no piece is
//!   left running on a borrowed function.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A job's pieces: called once with each index in `0..pieces`, from any of the crew's threads.
pub type Piece<'a> = dyn Fn(usize) + Sync + 'a;

/// The slot's job before the first publication (never called: it has no pieces).
const NOTHING: &Piece<'static> = &|_| {};

/// Spins between yields to the OS while a helper waits for a job or the publisher for the last
/// piece: short enough that a descheduled peer gets its core back soon on an oversubscribed
/// machine, long enough that a yield (a syscall) is rare next to a convolution.
const SPINS_PER_YIELD: u32 = 1 << 12;

struct Job {
    /// Lifetime erased: only called under a claim, and every claim ends before the publisher
    /// returns from [`Crew::for_each`], which holds the borrow.
    f: *const Piece<'static>,
    pieces: usize,
}

struct Shared {
    /// Bumped at each publication: what a waiting helper watches.
    generation: AtomicU64,
    /// Whether helpers may enter the job in `slot`.
    open: AtomicBool,
    /// Helpers between counting themselves in and out of the job.
    inside: AtomicUsize,
    slot: UnsafeCell<Job>,
    next: AtomicUsize,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Whether a shift is on: helpers spin while it is, and park when it is not.
    on_shift: AtomicBool,
    quit: AtomicBool,
}

// Safety: `slot` is written only by the publisher while no helper can read it (module docs);
// the function it points to is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Shared {
    /// Claims and runs pieces of `job` until none is left.
    fn run_pieces(&self, job: &Job) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= job.pieces {
                return;
            }
            // Safety: a claim below `pieces` keeps the publisher in `for_each`, so the borrow lives.
            let f = unsafe { &*job.f };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                self.panic.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(payload);
            }
            // Release: the piece's writes happen before the publisher sees it done.
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// A helper's visit to the current job, if it is open.
    fn visit(&self) {
        self.inside.fetch_add(1, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) {
            // Safety: the slot is not rewritten while this helper is counted inside and it is open.
            let job = unsafe { &*self.slot.get() };
            self.run_pieces(job);
        }
        self.inside.fetch_sub(1, Ordering::Release);
    }

    fn helper(&self) {
        // From 0, not the generation at start: a helper that starts after the first job was
        // published still visits it (a visit to a finished job claims nothing).
        let mut seen = 0;
        while !self.quit.load(Ordering::Acquire) {
            if !self.on_shift.load(Ordering::Acquire) {
                // A shift's start unparks; a spurious wake-up just loops.
                std::thread::park();
                continue;
            }
            let mut spins = 0u32;
            while self.on_shift.load(Ordering::Relaxed) {
                let now = self.generation.load(Ordering::Acquire);
                if now != seen {
                    seen = now;
                    self.visit();
                    spins = 0;
                    continue;
                }
                spins = wait(spins);
            }
        }
    }
}

thread_local! {
    /// The crew whose shift this thread is on, if any.
    static ON_SHIFT: Cell<*const Crew> = const { Cell::new(std::ptr::null()) };
}

/// `helpers` threads that share each job with the thread on shift.
pub struct Crew {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// Held for a shift: one thread on shift at a time.
    shift: Mutex<()>,
}

impl Crew {
    /// Starts `helpers` parked threads (none: every job runs on the caller).
    pub fn new(helpers: usize) -> Result<Crew> {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            open: AtomicBool::new(false),
            inside: AtomicUsize::new(0),
            slot: UnsafeCell::new(Job { f: NOTHING, pieces: 0 }),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            on_shift: AtomicBool::new(false),
            quit: AtomicBool::new(false),
        });
        let mut crew = Crew { shared: shared.clone(), helpers: Vec::with_capacity(helpers), shift: Mutex::new(()) };
        for i in 0..helpers {
            let shared = shared.clone();
            let handle =
                std::thread::Builder::new()
                    .name(format!("brenier-crew-{i}"))
                    .spawn(move || shared.helper())
                    .map_err(|e| Error::InvalidArgument(format!("cannot start {helpers} CPU helper threads: {e}")))?;
            crew.helpers.push(handle);
        }
        Ok(crew)
    }

    /// Threads a job is shared among: the helpers and the thread on shift.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `work` with the crew awake and this thread on shift ([`Crew::current`] finds it).
    /// A crew already on shift (another thread's run) leaves `work` to run without it.
    pub fn shift<R>(&self, work: impl FnOnce() -> R) -> R {
        // Poisoned by a piece's panic re-raised in an earlier shift: the crew is whole (no piece
        // is left running), so it serves on.
        let _held = match self.shift.try_lock() {
            Ok(held) => held,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return work(),
        };
        if !ON_SHIFT.get().is_null() {
            return work();
        }
        /// Ends the shift on every way out of `work`, unwinding included.
        struct Off<'a>(&'a Crew);
        impl Drop for Off<'_> {
            fn drop(&mut self) {
                ON_SHIFT.set(std::ptr::null());
                self.0.shared.on_shift.store(false, Ordering::Release);
            }
        }
        self.shared.on_shift.store(true, Ordering::Release);
        for h in &self.helpers {
            h.thread().unpark();
        }
        ON_SHIFT.set(self);
        let _off = Off(self);
        work()
    }

    /// Calls `f` with the crew on shift on this thread, if there is one.
    pub fn current<R>(f: impl FnOnce(Option<&Crew>) -> R) -> R {
        let crew = ON_SHIFT.get();
        // Safety: set only for the extent of `shift`, which borrows the crew.
        f(unsafe { crew.as_ref() })
    }

    /// Calls `f(i)` for every `i` in `0..pieces`, shared among the crew's threads and this one,
    /// and returns when all are done. A piece's panic is raised here once every piece is done.
    /// On a thread not on this crew's shift, runs every piece here.
    pub fn for_each(&self, pieces: usize, f: &Piece<'_>) {
        if pieces <= 1 || self.helpers.is_empty() || !std::ptr::eq(ON_SHIFT.get(), self) {
            (0..pieces).for_each(f);
            return;
        }
        let s = &*self.shared;
        s.open.store(false, Ordering::SeqCst);
        let mut spins = 0u32;
        while s.inside.load(Ordering::SeqCst) != 0 {
            spins = wait(spins);
        }
        // Safety: the lifetime is erased for the slot only; see `Job::f`.
        let f: *const Piece<'static> = unsafe { std::mem::transmute::<*const Piece<'_>, *const Piece<'static>>(f) };
        // Safety: closed and nobody inside: no helper reads the slot now (module docs).
        unsafe { *s.slot.get() = Job { f, pieces } };
        s.next.store(0, Ordering::Relaxed);
        s.done.store(0, Ordering::Relaxed);
        s.open.store(true, Ordering::SeqCst);
        s.generation.fetch_add(1, Ordering::Release);
        {
            // Off shift while this thread runs pieces: a piece that asked the crew for another
            // job would rewrite this one's slot and counters under it; it runs serially instead.
            struct Back(*const Crew);
            impl Drop for Back {
                fn drop(&mut self) {
                    ON_SHIFT.set(self.0);
                }
            }
            let _back = Back(ON_SHIFT.replace(std::ptr::null()));
            s.run_pieces(&Job { f, pieces });
        }
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < pieces {
            spins = wait(spins);
        }
        if let Some(payload) = s.panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
            resume_unwind(payload);
        }
    }
}

/// One spin of a wait loop, yielding to the OS every [`SPINS_PER_YIELD`].
fn wait(spins: u32) -> u32 {
    let spins = spins.wrapping_add(1);
    if spins.is_multiple_of(SPINS_PER_YIELD) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
    spins
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::Release);
        for h in &self.helpers {
            h.thread().unpark();
        }
        for h in self.helpers.drain(..) {
            // A helper runs pieces under catch_unwind: it cannot have panicked.
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Crew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crew({} threads)", self.threads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on its own thread and fails after a minute instead of hanging (a lost
    /// piece or wake-up would otherwise spin forever).
    fn within_a_minute(test: impl FnOnce() + Send + 'static) {
        let (done, finished) = std::sync::mpsc::channel();
        let runner = std::thread::spawn(move || {
            test();
            let _ = done.send(());
        });
        match finished.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(()) => runner.join().unwrap(),
            // The test panicked: re-raise its panic here.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(runner.join().unwrap_err())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the crew hung"),
        }
    }

    /// Runs `jobs` jobs of varying sizes on a shift, counting each piece's calls.
    fn every_piece_once(crew: &Crew, jobs: usize) {
        crew.shift(|| {
            for j in 0..jobs {
                let pieces = j % 37;
                let calls: Vec<AtomicUsize> = (0..pieces).map(|_| AtomicUsize::new(0)).collect();
                Crew::current(|c| {
                    c.expect("on shift").for_each(pieces, &|i| {
                        calls[i].fetch_add(1, Ordering::Relaxed);
                    })
                });
                assert!(calls.iter().all(|c| c.load(Ordering::Relaxed) == 1), "job {j}: {calls:?}");
            }
        });
    }

    #[test]
    fn every_piece_runs_once_on_any_crew_over_many_jobs_and_shifts() {
        within_a_minute(|| {
            for helpers in [0, 1, 3] {
                let crew = Crew::new(helpers).unwrap();
                assert_eq!(crew.threads(), helpers + 1);
                for _ in 0..20 {
                    every_piece_once(&crew, 200);
                }
            }
        });
    }

    #[test]
    fn helpers_take_pieces_while_the_caller_is_busy() {
        within_a_minute(|| {
            // The caller's first piece waits until another thread has run one: without helpers
            // it would wait forever (cut at 30 s), so a pass proves the pieces are shared.
            let crew = Crew::new(1).unwrap();
            let caller = std::thread::current().id();
            let others = AtomicUsize::new(0);
            let start = std::time::Instant::now();
            crew.shift(|| {
                crew.for_each(8, &|_| {
                    if std::thread::current().id() == caller {
                        while others.load(Ordering::Acquire) == 0 {
                            assert!(start.elapsed().as_secs() < 30, "no helper took a piece");
                            std::hint::spin_loop();
                        }
                    } else {
                        others.fetch_add(1, Ordering::Release);
                    }
                })
            });
            assert!(others.load(Ordering::Relaxed) >= 1);
        });
    }

    #[test]
    fn off_shift_every_piece_runs_on_the_caller() {
        let crew = Crew::new(2).unwrap();
        let caller = std::thread::current().id();
        let here = AtomicUsize::new(0);
        crew.for_each(16, &|_| {
            if std::thread::current().id() == caller {
                here.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(here.load(Ordering::Relaxed), 16);
        Crew::current(|c| assert!(c.is_none(), "no shift outside `shift`"));
    }

    #[test]
    fn a_panicking_piece_reaches_the_caller_after_every_other_piece_and_the_crew_goes_on() {
        within_a_minute(|| {
            let crew = Crew::new(2).unwrap();
            let ran = AtomicUsize::new(0);
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                crew.shift(|| {
                    crew.for_each(64, &|i| {
                        ran.fetch_add(1, Ordering::Relaxed);
                        assert_ne!(i, 17, "piece 17 fails");
                    })
                })
            }));
            assert!(caught.is_err());
            assert_eq!(ran.load(Ordering::Relaxed), 64, "no piece left behind");
            Crew::current(|c| assert!(c.is_none(), "the shift ended with the panic"));
            every_piece_once(&crew, 50);
        });
    }

    #[test]
    fn a_piece_that_asks_for_another_job_runs_it_serially() {
        within_a_minute(|| {
            let crew = Crew::new(2).unwrap();
            let calls: Vec<AtomicUsize> = (0..8 * 8).map(|_| AtomicUsize::new(0)).collect();
            crew.shift(|| {
                crew.for_each(8, &|i| {
                    Crew::current(|c| assert!(c.is_none(), "no crew inside a piece"));
                    crew.for_each(8, &|j| {
                        calls[i * 8 + j].fetch_add(1, Ordering::Relaxed);
                    });
                });
                Crew::current(|c| assert!(c.is_some(), "back on shift after the job"));
            });
            assert!(calls.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{calls:?}");
        });
    }

    #[test]
    fn a_second_thread_runs_without_the_crew_while_it_is_on_shift() {
        within_a_minute(|| {
            let crew = Crew::new(1).unwrap();
            crew.shift(|| {
                std::thread::scope(|s| {
                    s.spawn(|| {
                        crew.shift(|| {
                            Crew::current(|c| assert!(c.is_none(), "busy crew: no shift for a second thread"))
                        })
                    });
                });
                every_piece_once(&crew, 10);
            });
        });
    }
}
