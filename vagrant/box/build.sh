#!/usr/bin/env bash
# Builds flotilla's Debian 12 (bookworm) box for vagrant-libvirt locally with
# debootstrap and registers it with `vagrant box add`; a box already
# registered under the same name is reused (FLOTILLA_BOX_REBUILD=1 replaces it).
# The VMs reach no package registry, so everything they run goes into the
# box now: etcd-server and etcd-client from Debian, and this host's Node.js
# binary (the host runs Debian 12 too). Needs root, debootstrap, qemu-img,
# losetup/partx, sfdisk and a Debian mirror (the one apt uses).
#
#   FLOTILLA_BOX         box name            (default flotilla/debian12)
#   FLOTILLA_BOX_MIRROR  Debian mirror       (default: the host's, from apt)
#   FLOTILLA_BOX_WORK    scratch folder      (default /var/tmp; removed afterwards)
#   FLOTILLA_NODE_BIN    Node.js to copy in  (default: `command -v node`, 20+)
set -euo pipefail

box=${FLOTILLA_BOX:-flotilla/debian12}
log() { echo "box: $*" >&2; }

if [ "${FLOTILLA_BOX_REBUILD:-0}" != 1 ] &&
  vagrant box list --machine-readable 2>/dev/null | awk -F, -v b="$box" '$3=="box-name"{n=$4} $3=="box-provider" && n==b && $4=="libvirt"{f=1} END{exit !f}'; then
  log "$box (libvirt) is already registered: reusing it"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, loop devices)"; exit 1; }

node_bin=${FLOTILLA_NODE_BIN:-$(command -v node || true)}
if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
  log "no Node.js binary to put in the box (set FLOTILLA_NODE_BIN)"
  exit 1
fi
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { log "$node_bin is Node $node_major; flotilla needs 20+"; exit 1; }

mirror=${FLOTILLA_BOX_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources |
    grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

pubkey=""
for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
  [ -r "$k" ] && pubkey=$k && break
done
[ -n "$pubkey" ] || { log "Vagrant's insecure public key (keys/vagrant.pub) not found: install vagrant"; exit 1; }

work=$(mktemp -d "${FLOTILLA_BOX_WORK:-/var/tmp}/flotilla-box.XXXXXX")
root=$work/rootfs mnt=$work/mnt loop=""
cleanup() {
  set +e
  for m in dev/pts dev proc sys; do mountpoint -q "$mnt/$m" && umount "$mnt/$m"; done
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loop" ] && { partx -d "$loop" 2>/dev/null; losetup -d "$loop"; }
  # debootstrap mounts proc and sys in the tree; never delete through a mount.
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
started=$(date +%s)

log "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase \
  --include=linux-image-amd64,systemd-sysv,openssh-server,sudo,grub-pc,iproute2,iputils-ping,dbus,udev,kmod,procps,rsync,netbase,etcd-server,etcd-client,less \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

log "configuring the tree"
echo flotilla-box >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo 'LABEL=rootfs / ext4 errors=remount-ro 0 1' >"$root/etc/fstab"
# An empty machine ID: every VM makes its own at first boot (identical IDs
# clash in DHCP, and flotilla refuses duplicate machines).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"

# eth0 (net.ifnames=0) by DHCP on the management network; Vagrant configures
# the private network's static address itself (systemd-networkd files).
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-eth0.network"
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# Only eth0 must be up for network-online.target.
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60\n' \
  >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"

# The vagrant user: Vagrant's well-known insecure key (Vagrant replaces it
# with a key of its own at first `vagrant up`), password-less sudo.
chroot "$root" useradd -m -s /bin/bash vagrant
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"

# SSH host keys: made at first boot, distinct per VM.
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/systemd/system/ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys at first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/ssh-host-keys.service "$root/etc/systemd/system/multi-user.target.wants/ssh-host-keys.service"
echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/vagrant.conf"

# etcd is installed but not started: provisioning configures the members.
rm -f "$root/etc/systemd/system/multi-user.target.wants/etcd.service" "$root/etc/systemd/system/etcd2.service"
rm -rf "$root/var/lib/etcd/default"
# Emulated guests are slow: nothing periodic that flotilla does not need.
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
  dpkg-db-backup.timer fstrim.timer systemd-tmpfiles-clean.timer e2scrub_reap.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# Node.js: this host's binary (Debian 12's own nodejs is 18).
install -m 755 "$node_bin" "$root/usr/bin/node"

sed -i -E 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/; s/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200"/' "$root/etc/default/grub"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root/etc/resolv.conf"

log "making the disk image"
truncate -s 4G "$work/disk.raw"
echo 'type=83, bootable' | sfdisk -q "$work/disk.raw"
loop=$(losetup -f --show -P "$work/disk.raw")
[ -b "${loop}p1" ] || partx -a "$loop"
[ -b "${loop}p1" ] || { log "no partition device ${loop}p1"; exit 1; }
mkfs.ext4 -q -L rootfs "${loop}p1"
mkdir -p "$mnt"
mount "${loop}p1" "$mnt"
cp -a "$root/." "$mnt/"
for m in dev dev/pts proc sys; do mount --bind "/$m" "$mnt/$m"; done
chroot "$mnt" grub-install --target=i386-pc "$loop" >"$work/grub.log" 2>&1 || { cat "$work/grub.log" >&2; exit 1; }
chroot "$mnt" update-grub >>"$work/grub.log" 2>&1 || { cat "$work/grub.log" >&2; exit 1; }
# No udev here: grub names the loop partition; the VM finds its root by label.
sed -i -E 's#root=(/dev/loop[0-9]+p[0-9]+|UUID=[0-9a-f-]+)#root=LABEL=rootfs#g' "$mnt/boot/grub/grub.cfg"
grep -q 'root=LABEL=rootfs' "$mnt/boot/grub/grub.cfg" || { log "grub.cfg has no root=LABEL=rootfs"; exit 1; }
for m in dev/pts dev proc sys; do umount "$mnt/$m"; done
umount "$mnt"
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"
loop=""

log "compressing to qcow2"
mkdir -p "$work/box"
qemu-img convert -O qcow2 -c "$work/disk.raw" "$work/box/box.img"
rm -f "$work/disk.raw"
echo '{"provider":"libvirt","format":"qcow2","virtual_size":4}' >"$work/box/metadata.json"
cat >"$work/box/Vagrantfile" <<'VF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
VF
tar -C "$work/box" -cf "$work/flotilla.box" metadata.json Vagrantfile box.img
vagrant box add --force --name "$box" "$work/flotilla.box" >&2
log "registered $box in $(($(date +%s) - started)) s"
