#!/bin/sh
# Client script for dhclient (-sf), udhcpc (-s) and dhcpcd (-c): records each
# event and the lease in $HOOK_LOG, one line per event, and changes nothing.
# With HOOK_APPLY=1 it also puts the address on the interface, so the client
# can unicast (renewals and releases need that).
event="${reason:-$1}"
addr="${new_ip_address:-$ip}"
server="${new_dhcp_server_identifier:-$serverid}"
# fqdn: the client FQDN option (81) as dhclient decodes it, last.
# mask, routers and routes121 (option 121: dhclient's bytes, udhcpc's
# "net/len gw" pairs), blanks made commas so each stays one word.
words() { echo $* | tr ' ' ','; }
echo "event=$event ip=$addr server=$server domain=${new_domain_name:-$domain} fqdn=${new_fqdn_fqdn:-} fqdn_flags=${new_fqdn_server_update:-}/${new_fqdn_no_client_update:-}/${new_fqdn_encoded:-} mask=${new_subnet_mask:-$subnet} routers=$(words ${new_routers:-$router}) routes121=$(words ${new_rfc3442_classless_static_routes:-$staticroutes})" >> "${HOOK_LOG:-/tmp/idt_hook.log}"
if [ "${HOOK_APPLY:-0}" = 1 ] && [ -n "$addr" ]; then
  case "$event" in
    BOUND|REBOOT|RENEW|REBIND|bound|renew)
      ip addr replace "$addr/24" dev "${interface:-$IFACE}"
      # A client behind a relay reaches the server through its router.
      gw=$(echo ${new_routers:-$router} | cut -d' ' -f1)
      [ -n "$gw" ] && ip route replace default via "$gw" || true ;;
  esac
fi
exit 0
