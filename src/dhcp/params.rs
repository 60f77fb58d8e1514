//! The parameters a client gets: the global set, overlaid by its subnet's,
//! its vendor class's, its user class's and its client entry's.

use super::packet::code;
use super::Exchange;
use crate::config::{Params, Subnet};

impl Exchange<'_, '_> {
    /// The parameters for `subnet`: global < subnet < vendor class < user
    /// class < client. Merged once an exchange has settled on its subnet,
    /// and passed to what needs them (the lease, the reply).
    pub(super) fn params(&self, subnet: &Subnet) -> Params {
        let vendor = self
            .req
            .option(code::VENDOR_CLASS)
            .and_then(|v| self.cfg.vendor_class(v));
        let user = self
            .req
            .option(code::USER_CLASS)
            .and_then(|v| self.cfg.user_class(v));
        let mut merged = self.cfg.global.clone();
        let sets = [
            Some(&subnet.params),
            vendor.map(|c| &c.params),
            user.map(|c| &c.params),
            self.client.map(|c| &c.params),
        ];
        for set in sets.into_iter().flatten() {
            overlay(&mut merged, set);
        }
        merged
    }
}

/// A more specific set overrides a less specific one, field by field and
/// option by option.
fn overlay(base: &mut Params, over: &Params) {
    for (c, v) in &over.options {
        base.options.insert(*c, v.clone());
    }
    for (c, v) in &over.vendor_options {
        base.vendor_options.insert(*c, v.clone());
    }
    macro_rules! take {
        ($($field:ident),*) => { $( if over.$field.is_some() { base.$field = over.$field.clone(); } )* };
    }
    take!(
        lease_time,
        max_lease_time,
        renewal_percent,
        rebind_percent,
        next_server,
        boot_file
    );
}
