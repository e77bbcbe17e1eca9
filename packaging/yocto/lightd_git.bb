# Yocto recipe for lightd, written for scarthgap (5.0, Rust 1.75; lightd needs 1.71). Put it in a
# layer as recipes-httpd/lightd/lightd_git.bb, with lightd-crates.inc beside it: that file lists
# the crates from Cargo.lock, and is regenerated with gen-crates-inc.sh (or, in a build tree,
# `bitbake -c update_crates lightd`) whenever Cargo.lock changes.
#
# The paths match `make install` and the init files, which name /usr/sbin/lightd and
# /etc/lightd/lightd.conf outright: this assumes the default sbindir and sysconfdir.
SUMMARY = "Small single-threaded HTTP/1.1 server that reads lighttpd's config"
DESCRIPTION = "lightd is a small, single-threaded HTTP/1.1 server written in Rust. It reads \
lighttpd's command line and lighttpd 1.4's configuration language, serves static files, and \
reloads without refusing or resetting a connection."
SECTION = "net"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=333386361ca944aa53ef93405e216189"

# PLACEHOLDERS: .invalid never resolves. Put the real repository and branch here, and the full
# id of the commit to build in SRCREV.
SRC_URI = "git://git.example.invalid/lightd.git;protocol=https;branch=main"
SRCREV = "0000000000000000000000000000000000000000"
PV = "0.1.0+git"
S = "${WORKDIR}/git"

inherit cargo cargo-update-recipe-crates update-rc.d systemd

require ${BPN}-crates.inc

# Cargo.toml's release profile strips the binary. Yocto strips it itself, keeping the symbols
# for lightd-dbg, and refuses a binary that is already stripped (QA already-stripped).
export CARGO_PROFILE_RELEASE_STRIP = "false"

INITSCRIPT_NAME = "lightd"
INITSCRIPT_PARAMS = "defaults 50"

SYSTEMD_SERVICE:${PN} = "lightd.socket lightd.service"

CONFFILES:${PN} = "${sysconfdir}/lightd/lightd.conf ${sysconfdir}/lightd/mime-types.conf"
FILES:${PN} += "${nonarch_libdir}/tmpfiles.d"

# cargo's own do_install would put the binary in ${bindir}. /var/log is a tmpfs by default
# (VOLATILE_LOG_DIR), so the log directory lightd.conf names is created at boot: by
# populate-volatile.sh under sysvinit, by systemd-tmpfiles under systemd. lightd will not
# start without it.
do_install() {
	install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/lightd ${D}${sbindir}/lightd
	install -D -m 0644 ${S}/packaging/lightd.conf ${D}${sysconfdir}/lightd/lightd.conf
	install -D -m 0644 ${S}/conf/mime-types.conf ${D}${sysconfdir}/lightd/mime-types.conf
	install -d -m 0755 ${D}${localstatedir}/www/html

	if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
		install -D -m 0755 ${S}/rc/lightd ${D}${sysconfdir}/init.d/lightd
		install -D -m 0644 ${S}/packaging/yocto/volatiles.99_lightd ${D}${sysconfdir}/default/volatiles/99_lightd
	fi
	if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
		install -D -m 0644 ${S}/rc/lightd.service ${D}${systemd_system_unitdir}/lightd.service
		install -D -m 0644 ${S}/rc/lightd.socket ${D}${systemd_system_unitdir}/lightd.socket
		install -D -m 0644 ${S}/packaging/lightd.tmpfiles ${D}${nonarch_libdir}/tmpfiles.d/lightd.conf
	fi
}
