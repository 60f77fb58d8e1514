//! in.dhcpd: a DHCPv4 server in the tradition of SCO UnixWare's in.dhcpd.
//!
//! The binaries in `src/bin` only wire these modules together.

pub mod aas;
pub mod aasd;
pub mod activation;
pub mod cli;
pub mod config;
pub mod dhcp;
pub mod forward;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod limits;
pub mod log;
pub mod net;
pub mod notify;
pub mod privilege;
pub mod probe;
pub mod server;
pub mod signals;
pub mod startup;
pub mod sys;

#[cfg(test)]
mod tests {
    /// Each module's error type works with `?` into `Box<dyn Error>` and
    /// prints as its Display says.
    #[test]
    fn error_types_are_std_errors() {
        fn boxed(e: impl std::error::Error + 'static) -> String {
            let e: Box<dyn std::error::Error> = Box::new(e);
            e.to_string()
        }
        let usage = crate::cli::UsageError("-x: unknown".into());
        assert_eq!(boxed(usage), "-x: unknown");
        let down = crate::aas::client::Down("in.aasd is down".into());
        assert_eq!(boxed(down), "in.aasd is down");
        let syntax = crate::aas::proto::parse("PING extra").unwrap_err();
        assert_eq!(boxed(syntax), "usage: PING");
        let bad = crate::dhcp::packet::Malformed::HlenTooLong(17);
        assert_eq!(boxed(bad), "hlen 17 > 16");
        assert_eq!(
            boxed(crate::activation::Error::NotInetd),
            "-i given but fd 0 is not a socket"
        );
        let conf = crate::config::ConfigError {
            file: "d.conf".into(),
            line: 3,
            message: "what".into(),
        };
        assert_eq!(boxed(conf), "d.conf:3: what");
    }
}
