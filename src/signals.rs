//! SIGHUP rereads the configuration; SIGTERM and SIGINT end the loop. The
//! handlers only set flags that the loops look at between waits.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static HANGUP: AtomicBool = AtomicBool::new(false);
static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_: libc::c_int) {
    HANGUP.store(true, Ordering::SeqCst);
}

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// No SA_RESTART, so a signal interrupts poll(2) at once. SIGPIPE is
/// ignored: a requester that hangs up must not kill the server.
pub fn install() -> nix::Result<()> {
    let act = |h| SigAction::new(SigHandler::Handler(h), SaFlags::empty(), SigSet::empty());
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        sigaction(Signal::SIGHUP, &act(on_hangup))?;
        sigaction(Signal::SIGTERM, &act(on_terminate))?;
        sigaction(Signal::SIGINT, &act(on_terminate))?;
        sigaction(Signal::SIGPIPE, &ignore)?;
    }
    Ok(())
}

pub fn terminated() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// True once per SIGHUP received.
pub fn take_hangup() -> bool {
    HANGUP.swap(false, Ordering::SeqCst)
}
