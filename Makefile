# Install lightd for packagers (OpenWrt, Buildroot, Yocto, distributions) and by hand:
#
#     cargo build --release
#     make install DESTDIR=/tmp/stage PREFIX=/usr
#
# `make install` builds nothing: it copies BIN (default target/release/lightd; a cross build
# passes e.g. BIN=target/aarch64-unknown-linux-musl/release/lightd) and the files around it.
# What goes where, under $(DESTDIR):
#   $(SBINDIR)/lightd                     the server (the init files expect /usr/sbin/lightd)
#   $(SYSCONFDIR)/lightd/lightd.conf      packaging/lightd.conf, the production config
#   $(SYSCONFDIR)/lightd/mime-types.conf  conf/mime-types.conf
#   $(SYSCONFDIR)/init.d/lightd           rc/lightd, the LSB init script
#   $(SYSTEMDDIR)/lightd.service          rc/lightd.service and rc/lightd.socket
#   $(RCDIR)/                             the init files for other init systems, laid out as in
#                                         rc/, for packagers to install where theirs go:
#                                         lightd.procd (OpenWrt), lightd.openrc, runit/, s6/
#   $(WWWDIR)                             the document root (created empty)
#   $(LOGDIR)                             server.errorlog and accesslog.filename go here

PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
RCDIR      ?= $(PREFIX)/share/lightd/rc
WWWDIR     ?= /var/www/html
LOGDIR     ?= /var/log/lightd
BIN        ?= target/release/lightd
INSTALL    ?= install

.PHONY: all install

all:
	cargo build --release

install:
	@test -x "$(BIN)" || { echo "make install: $(BIN) is not built (run cargo build --release, or pass BIN=...)" >&2; exit 1; }
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(SYSCONFDIR)/lightd" "$(DESTDIR)$(SYSCONFDIR)/init.d" "$(DESTDIR)$(SYSTEMDDIR)" "$(DESTDIR)$(WWWDIR)" "$(DESTDIR)$(LOGDIR)"
	$(INSTALL) -m 0755 "$(BIN)" "$(DESTDIR)$(SBINDIR)/lightd"
	$(INSTALL) -m 0644 packaging/lightd.conf "$(DESTDIR)$(SYSCONFDIR)/lightd/lightd.conf"
	$(INSTALL) -m 0644 conf/mime-types.conf "$(DESTDIR)$(SYSCONFDIR)/lightd/mime-types.conf"
	$(INSTALL) -m 0755 rc/lightd "$(DESTDIR)$(SYSCONFDIR)/init.d/lightd"
	$(INSTALL) -m 0644 rc/lightd.service rc/lightd.socket "$(DESTDIR)$(SYSTEMDDIR)/"
	$(INSTALL) -d "$(DESTDIR)$(RCDIR)/runit/control" "$(DESTDIR)$(RCDIR)/s6"
	$(INSTALL) -m 0755 rc/lightd.procd rc/lightd.openrc "$(DESTDIR)$(RCDIR)/"
	$(INSTALL) -m 0755 rc/runit/run "$(DESTDIR)$(RCDIR)/runit/run"
	$(INSTALL) -m 0755 rc/runit/control/t "$(DESTDIR)$(RCDIR)/runit/control/t"
	$(INSTALL) -m 0755 rc/s6/run "$(DESTDIR)$(RCDIR)/s6/run"
	$(INSTALL) -m 0644 rc/s6/down-signal rc/s6/timeout-kill "$(DESTDIR)$(RCDIR)/s6/"
