# in.dhcpd, in.aasd and aasadmin: build, test, install, demo.
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo

SBIN = $(DESTDIR)$(PREFIX)/sbin
MAN5 = $(DESTDIR)$(PREFIX)/share/man/man5
MAN8 = $(DESTDIR)$(PREFIX)/share/man/man8

.PHONY: all build test install demo fuzz bench clean need-root need-cargo deb deb-test fresh-root

all: build

build: need-cargo
	$(CARGO) build --release

# With rustup installed for a user, sudo's secure_path drops ~/.cargo/bin.
need-cargo:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "make $(MAKECMDGOALS): $(CARGO) is not on PATH ($$PATH)." >&2; \
	  echo "  Install the Rust toolchain with rustup (README: Before you start)." >&2; \
	  if [ -n "$$SUDO_USER" ]; then \
	    echo "  Under sudo, keep your PATH and home: sudo -E env PATH=\"\$$PATH\" make $(MAKECMDGOALS)" >&2; \
	  fi; \
	  exit 1; }

need-root:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make $(MAKECMDGOALS): needs root, because it creates network namespaces; run it with sudo" >&2; \
	  exit 1; \
	fi

# Unit tests, integration tests with real clients in network namespaces,
# then format, lint and manual page checks, the tests of the benchmark's
# slow disk (benches/slowfs, its own package, mounted for real), a short
# run of the benchmark script so that it keeps working (it asserts no
# timing), and the Debian package.
test: need-root need-cargo
	tests/install-deps.sh
	$(CARGO) build
	$(CARGO) test
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	cd man && mandoc -Tlint -W warning *.5 *.8
	$(CARGO) test --manifest-path benches/slowfs/Cargo.toml --target-dir target/slowfs
	benches/bench.sh --quick --debug-build -o target/bench-quick
	$(MAKE) deb-test
	$(GIVE_BACK)

# Under sudo, what the build made goes back to the user who owns the tree
# (target/, and the cargo home when it is that user's), so that a later
# make without sudo can write there again.
GIVE_BACK = @tests/give-back.sh target

# The Debian package, built by cargo-deb from [package.metadata.deb] in
# Cargo.toml and the files in debian/: target/debian/in-dhcpd_*.deb.
deb: need-cargo
	@command -v cargo-deb >/dev/null || { \
	  echo "make deb: cargo-deb is missing: run tests/install-deps.sh as root, or cargo install cargo-deb --locked" >&2; \
	  exit 1; }
	$(CARGO) deb

# The package's contents and lintian, then an install into a fresh Debian
# root (debootstrap) where a real client gets a lease from it; remove and
# purge. See tests/deb.sh.
deb-test: need-root deb
	tests/deb.sh

# The long fuzz runs, outside CI: each target until FUZZ_SECONDS or
# FUZZ_RUNS executions, whichever comes first. `cargo test` replays the
# seeds and every kept finding (tests/fuzz_corpus.rs) without a fuzzer.
FUZZ_SECONDS ?= 1800
FUZZ_RUNS ?= 10000000
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_RUNS)

# Throughput against Kea, ISC dhcpd, dnsmasq and a reflector, cold start
# under inetd, in.aasd start-up; about 35 minutes, on a quiet machine.
# Results in target/bench/results.md. BENCH_ARGS passes options, e.g.
# BENCH_ARGS='-s ours-never,kea -n 5'. Then the failover gap of ours and
# Kea's HA (target/failover/results.md), FAILOVER_ARGS for its options.
bench: need-root
	benches/bench.sh $(BENCH_ARGS)
	benches/failover.sh $(FAILOVER_ARGS)

# Copies what `make` built; never builds (under sudo, cargo is often not on
# root's PATH, and a root build would leave root's files in target/).
install:
	@for b in in-dhcpd in-aasd aasadmin; do \
	  [ -x target/release/$$b ] || { echo "make install: target/release/$$b is missing: run make first (as yourself, without sudo)" >&2; exit 1; }; \
	done
	install -d $(SBIN) $(MAN5) $(MAN8)
	install -m 755 target/release/in-dhcpd $(SBIN)/in.dhcpd
	install -m 755 target/release/in-aasd $(SBIN)/in.aasd
	install -m 755 target/release/aasadmin $(SBIN)/aasadmin
	install -m 644 man/*.5 $(MAN5)
	install -m 644 man/*.8 $(MAN8)

demo: need-root need-cargo
	tests/install-deps.sh
	$(CARGO) build --release
	$(GIVE_BACK)
	tests/demo.sh target/release

# README's two commands on a fresh Debian 12 machine with only the Rust
# toolchain (tests/fresh-root.sh): what CI runs.
fresh-root: need-root
	tests/fresh-root.sh sh -c 'apt-get update && apt-get install -y --no-install-recommends build-essential && make demo && make test'

clean:
	$(CARGO) clean
