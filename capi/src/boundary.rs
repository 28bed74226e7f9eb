//! The edge every exported function goes through: a panic is caught here (unwinding into C is
//! undefined behaviour), and a failure leaves its message for `brenier_last_error` on the
//! calling thread.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::BrenierStatus;

/// A failed call: the code the caller branches on and the message it can show.
pub struct Failure {
    pub status: BrenierStatus,
    pub message: String,
}

impl From<runtime::Error> for Failure {
    fn from(e: runtime::Error) -> Self {
        Failure { status: (&e).into(), message: e.message_with_causes() }
    }
}

pub fn invalid(message: impl Into<String>) -> Failure {
    Failure { status: BrenierStatus::InvalidArgument, message: message.into() }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // An interior NUL cannot be represented; the message is cut there rather than lost.
    let cut = message.split('\0').next().unwrap_or_default();
    let c = CString::new(cut).unwrap_or_default();
    // try_with: a call from a thread-local destructor must not abort the process.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// The calling thread's last failure message; empty after a successful call.
pub fn last_error() -> *const c_char {
    LAST_ERROR.try_with(|e| e.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// Runs `body`, turning its failure or panic into a status and a message.
pub fn call(body: impl FnOnce() -> Result<(), Failure>) -> BrenierStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            BrenierStatus::Ok
        }
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (a bug in brenier, please report it): {what}"));
            BrenierStatus::Panic
        }
    }
}

/// A borrowed C string argument; NULL gives `None`.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string valid for the call.
pub unsafe fn opt_str<'a>(s: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract above.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map(Some).map_err(|_| invalid(format!("{what} is not UTF-8")))
}

/// A pointer argument that must not be NULL.
pub fn non_null<T>(p: *const T, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        Err(invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}
