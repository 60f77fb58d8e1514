//! Telling systemd a service is ready (sd_notify(3), `Type=notify`): one
//! datagram `READY=1` to the Unix socket named by `$NOTIFY_SOCKET`, a path
//! or, with a leading `@`, an abstract name. Units ordered after the
//! service then start once it answers, not a moment before.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Say `READY=1` if systemd asked for it; the variable is removed so that
/// children do not say it too. Without `$NOTIFY_SOCKET`, nothing.
pub fn ready() -> io::Result<()> {
    let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    std::env::remove_var("NOTIFY_SOCKET");
    let name = name.to_string_lossy().into_owned();
    let addr = match name.strip_prefix('@') {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name.as_bytes())?
        }
        None => SocketAddr::from_pathname(&name)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(b"READY=1", &addr)
        .map_err(|e| io::Error::new(e.kind(), format!("NOTIFY_SOCKET {name}: {e}")))?;
    Ok(())
}
