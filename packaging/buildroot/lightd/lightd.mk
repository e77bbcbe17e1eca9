################################################################################
#
# lightd
#
################################################################################

# Copy this directory to package/lightd in a Buildroot tree and add
#     source "package/lightd/Config.in"
# to package/Config.in (under "Networking applications"), or put it in a BR2_EXTERNAL tree.
#
# PLACEHOLDERS: LIGHTD_SITE and LIGHTD_VERSION must name the real repository and the full id of
# the commit to build, and lightd.hash needs the source archive's hash (see there).
#
# cargo-package vendors the crates when it downloads. A local tree (LIGHTD_OVERRIDE_SRCDIR)
# skips the download, so its offline build finds only crates that an earlier download left in
# Buildroot's cargo home (not tried here).
LIGHTD_VERSION = 0000000000000000000000000000000000000000
LIGHTD_SITE = https://git.example.invalid/lightd.git
LIGHTD_SITE_METHOD = git
LIGHTD_LICENSE = MIT
LIGHTD_LICENSE_FILES = LICENSE

# cargo-package builds with cargo build --locked --offline (the crates were vendored at
# download), and sets the release profile's opt-level, LTO and codegen-units from Buildroot's
# own options (BR2_OPTIMIZE_*, BR2_ENABLE_LTO) over Cargo.toml's. Its default install step is
# cargo install into $(TARGET_DIR)/usr/bin, but the init files expect /usr/sbin/lightd, so this
# installs what cargo build made, as `make install` lays it out.
LIGHTD_BIN = $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/lightd

define LIGHTD_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(LIGHTD_BIN) $(TARGET_DIR)/usr/sbin/lightd
	$(INSTALL) -D -m 0644 $(@D)/packaging/lightd.conf $(TARGET_DIR)/etc/lightd/lightd.conf
	$(INSTALL) -D -m 0644 $(@D)/conf/mime-types.conf $(TARGET_DIR)/etc/lightd/mime-types.conf
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/var/www/html
endef

# BR2_INIT_SYSV and BR2_INIT_BUSYBOX: rc/lightd is POSIX sh and runs under busybox. The default
# skeleton links /var/log to /tmp, a tmpfs: S50lightd makes the log directories the config
# names (asking lightd -p) before it starts lightd.
define LIGHTD_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/rc/lightd $(TARGET_DIR)/etc/init.d/S50lightd
endef

# Whether the units start at boot is up to the image's systemd presets. The tmpfiles entry
# creates /var/log/lightd at boot, in case /var/log is not kept.
define LIGHTD_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/rc/lightd.service $(TARGET_DIR)/usr/lib/systemd/system/lightd.service
	$(INSTALL) -D -m 0644 $(@D)/rc/lightd.socket $(TARGET_DIR)/usr/lib/systemd/system/lightd.socket
	$(INSTALL) -D -m 0644 $(@D)/packaging/lightd.tmpfiles $(TARGET_DIR)/usr/lib/tmpfiles.d/lightd.conf
endef

$(eval $(cargo-package))
