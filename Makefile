# in.dhcpd, in.aasd and aasadmin: build, test, install, demo.
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo

SBIN = $(DESTDIR)$(PREFIX)/sbin
MAN5 = $(DESTDIR)$(PREFIX)/share/man/man5
MAN8 = $(DESTDIR)$(PREFIX)/share/man/man8

.PHONY: all build test install demo fuzz bench clean need-root deb deb-test

all: build

build:
	$(CARGO) build --release

need-root:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make $(MAKECMDGOALS): needs root, because it creates network namespaces; run it with sudo" >&2; \
	  exit 1; \
	fi

# Unit tests, integration tests with real clients in network namespaces,
# then format, lint and manual page checks, a short run of the benchmark
# script so that it keeps working (it asserts no timing), and the Debian
# package.
test: need-root
	tests/install-deps.sh
	$(CARGO) build
	$(CARGO) test
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	cd man && mandoc -Tlint -W warning *.5 *.8
	benches/bench.sh --quick --debug-build -o target/bench-quick
	$(MAKE) deb-test

# The Debian package, built by cargo-deb from [package.metadata.deb] in
# Cargo.toml and the files in debian/: target/debian/in-dhcpd_*.deb.
deb:
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
# BENCH_ARGS='-s ours-never,kea -n 5'.
bench: need-root
	benches/bench.sh $(BENCH_ARGS)

install: build
	install -d $(SBIN) $(MAN5) $(MAN8)
	install -m 755 target/release/in-dhcpd $(SBIN)/in.dhcpd
	install -m 755 target/release/in-aasd $(SBIN)/in.aasd
	install -m 755 target/release/aasadmin $(SBIN)/aasadmin
	install -m 644 man/*.5 $(MAN5)
	install -m 644 man/*.8 $(MAN8)

demo: need-root
	tests/install-deps.sh
	$(CARGO) build --release
	tests/demo.sh target/release

clean:
	$(CARGO) clean
