#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs COMMAND as root inside a qemu VM booted on another kernel (Debian's
# 6.1 LTS by default), in the current directory, and exits with its status.
#
#   scripts/vm.sh [--kernel VERSION] [--timeout S] [--mem MIB] [--accel auto|kvm|tcg]
#                 [--verbose] -- COMMAND...
#
# The guest sees the host's root read-only over 9p with a tmpfs overlay on
# top (a build made on the host runs as it is; writes vanish at power-off),
# /proc, /sys, devtmpfs, a cgroup v2 hierarchy of its own, a bpffs, a fresh
# /run, and the kernel's modules (loaded on demand through kmod). It has no
# network device: nothing it does reaches the host's networking. COMMAND's
# output comes back on the serial console, its status through a small
# writable 9p share; the guest powers off at the end, and qemu is killed on
# timeout.
#
# VERSION is a series (6.1: the newest linux-image-6.1.*-amd64-unsigned) or a
# Debian ABI (6.1.0-57-amd64). The package is fetched with apt-get download
# and unpacked into the cache (MS_VM_CACHE, default ~/.cache/meshsplice/vm),
# never installed as the machine's kernel; a series uses the newest ABI
# already cached (remove the cache to move on to a newer one).
#
# Exit status: COMMAND's; 124 on timeout; 125 when the VM did not run
# COMMAND to its end (boot failure, guest crash); 77 when no VM can be had
# here (no qemu and no way to install it, no kernel package).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$SRC/scripts/vm.sh
CACHE=${MS_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshsplice/vm}
KERNEL=6.1
TIMEOUT=600
MEM=2048
ACCEL=${MS_VM_ACCEL:-auto}
VERBOSE=0
PKGS=(qemu-system-x86 busybox-static cpio kmod xz-utils)
# loaded at boot, before the root exists (dependencies come from modules.dep)
BOOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay)
# loaded before COMMAND, as on a node that uses them (tcp_available_ulp lists
# loaded ULPs only); everything else (netfilter, qdiscs, ciphers) loads on demand
PRELOAD_MODULES=(veth tls)
# variables COMMAND gets from the caller's environment (besides MS_*)
PASS_ENV=(PATH HOME USER LANG LC_ALL TERM CI ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS MESON_TEST_ITERATION)
EXIT_TIMEOUT=124
EXIT_VM=125
EXIT_SKIP=77

say() { echo "vm: $*" >&2; }
die() { say "$*"; exit $EXIT_VM; }
skip() { say "$* (skipped)"; exit $EXIT_SKIP; }

usage() {
	sed -n '6,7p' "$SELF" | sed 's/^# *//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--kernel) KERNEL=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--mem) MEM=${2:?}; shift 2 ;;
	--accel) ACCEL=${2:?}; shift 2 ;;
	--verbose) VERBOSE=1; shift ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage
case $ACCEL in auto | kvm | tcg) ;; *) usage ;; esac

# ---- what the host needs -----------------------------------------------------

apt_ok() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; }

apt_quiet() {
	DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 "$@" >/dev/null 2>&1
}

ensure_packages() {
	local missing=() p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_ok || skip "missing ${missing[*]}, and no apt-get as root to install them"
	say "installing ${missing[*]}"
	apt_quiet install -y --no-install-recommends "${missing[@]}" ||
		{ apt_quiet update && apt_quiet install -y --no-install-recommends "${missing[@]}"; } ||
		skip "apt-get install ${missing[*]} failed"
}

# newest cached ABI of a series, or nothing
cached_abi() {
	local d best=
	for d in "$CACHE"/k-"$1".*-amd64; do
		[ -f "$d/ready" ] && best=$(printf '%s\n%s\n' "$best" "${d##*/k-}" | sort -V | tail -1)
	done
	echo "$best"
}

# newest ABI of a series that apt knows of, or nothing
apt_abi() {
	local re="^linux-image-${1//./\\.}\\.[0-9]+-[0-9]+-amd64-unsigned\$" names
	names=$(apt-cache search --names-only "$re" 2>/dev/null | awk '{ print $1 }')
	if [ -z "$names" ] && apt_ok; then
		apt_quiet update || true
		names=$(apt-cache search --names-only "$re" 2>/dev/null | awk '{ print $1 }')
	fi
	printf '%s\n' "$names" | sed -n 's/^linux-image-\(.*\)-unsigned$/\1/p' | sort -V | tail -1
}

# Fetch and unpack linux-image-ABI-unsigned into $CACHE/k-ABI (kernel, modules,
# modules.dep by depmod). Never touches the host's /boot or /lib/modules.
fetch_kernel() {
	local abi=$1 dir=$CACHE/k-$1 tmp deb
	[ -f "$dir/ready" ] && return 0
	apt_ok || skip "kernel $abi is not cached in $CACHE and apt-get is not available"
	tmp=$(mktemp -d "$CACHE/fetch.XXXX")
	say "fetching linux-image-$abi-unsigned"
	if ! (cd "$tmp" && apt-get download -qq "linux-image-$abi-unsigned" >/dev/null 2>&1); then
		apt_quiet update || true
		(cd "$tmp" && apt-get download -qq "linux-image-$abi-unsigned" >/dev/null 2>&1) ||
			{ rm -rf "$tmp"; skip "apt-get download linux-image-$abi-unsigned failed"; }
	fi
	deb=$(echo "$tmp"/*.deb)
	rm -rf "$dir"
	mkdir -p "$dir/root"
	dpkg-deb -x "$deb" "$dir/root"
	rm -rf "$tmp"
	[ -f "$dir/root/boot/vmlinuz-$abi" ] || die "no vmlinuz-$abi in the package"
	depmod -b "$dir/root" "$abi"
	extract_vmlinux "$dir/root/boot/vmlinuz-$abi" "$dir/vmlinux"
	touch "$dir/ready"
}

# The uncompressed kernel (an ELF with a PVH entry, which qemu boots
# directly): under TCG the bzImage's own xz decompression costs ~4 s a boot.
# Nothing is written when the image is not xz-compressed; the bzImage is
# booted then.
extract_vmlinux() {
	local off
	off=$(grep -abo -m1 $'\xfd7zXZ\x00' "$1" | head -1 | cut -d: -f1) || return 0
	[ -n "$off" ] || return 0
	tail -c +$((off + 1)) "$1" | xz -dc >"$2.tmp" 2>/dev/null
	if [ "$(head -c 4 "$2.tmp" | od -An -c | tr -d ' ')" = 177ELF ]; then
		mv "$2.tmp" "$2"
	else
		rm -f "$2.tmp"
	fi
}

# Modules NAME... and what they depend on, in load order (paths relative to
# the modules dir), from modules.dep.
module_closure() {
	local moddir=$1
	shift
	awk -v want="$*" '
		function norm(s) { gsub("-", "_", s); return s }
		function base(p) { sub(".*/", "", p); sub("\\.ko.*$", "", p); return norm(p) }
		function visit(m,   n, i, d) {
			if (m in done) return
			if (!(m in path)) { print "vm: no module " m > "/dev/stderr"; exit 1 }
			done[m] = 1
			n = split(deps[m], d, " ")
			for (i = n; i >= 1; i--) visit(base(d[i]))
			print path[m]
		}
		{ m = base($1); sub(":$", "", $1); path[m] = $1; $1 = ""; deps[m] = $0 }
		END { n = split(want, w, " "); for (i = 1; i <= n; i++) visit(norm(w[i])) }
	' "$moddir/modules.dep"
}

# The initramfs: busybox, the boot modules, /init and the second stage that
# runs as PID 1 in the overlay root. Rebuilt when this script changes.
build_initramfs() {
	local abi=$1 dir=$CACHE/k-$1 out=$CACHE/k-$1/initramfs.gz stage m
	local moddir=$dir/root/lib/modules/$abi
	[ -f "$out" ] && [ "$out" -nt "$SELF" ] && return 0
	stage=$(mktemp -d "$CACHE/initramfs.XXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,lower,upper,newroot,xfer,mod}
	cp /bin/busybox "$stage/bin/busybox"
	for m in sh mount umount mkdir cat echo insmod poweroff switch_root sleep cp ln; do
		ln -s busybox "$stage/bin/$m"
	done
	module_closure "$moddir" "${BOOT_MODULES[@]}" >"$stage/modules.list"
	while read -r m; do cp "$moddir/$m" "$stage/mod/"; done <"$stage/modules.list"
	sed -i 's|.*/||' "$stage/modules.list"
	sed -n '/^# ---- init$/,/^# ---- end init$/p' "$SELF" | sed '1d;$d' >"$stage/init"
	sed -n '/^# ---- stage2$/,/^# ---- end stage2$/p' "$SELF" | sed '1d;$d' >"$stage/stage2"
	chmod 755 "$stage/init" "$stage/stage2"
	(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

# ---- the guest's side (copied into the initramfs) ------------------------------

: <<'GUEST'
# ---- init
#!/bin/sh
# PID 1 of the initramfs: the root over 9p with a tmpfs overlay, then stage2.
export PATH=/bin
fail() {
	echo "vm-init: $*"
	poweroff -f
	sleep 10
}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do insmod "/mod/$m" || fail "insmod $m"; done </modules.list
case " $(cat /proc/cmdline) " in
*" ms.probe "*)
	echo "MS-VM-PROBE-OK"
	poweroff -f
	sleep 10
	;;
esac
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 msxfer /xfer || fail "mount xfer"
. /xfer/boot.env
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /lower ||
	fail "mount the host's root"
mount -t tmpfs -o mode=755 upper /upper || fail "mount tmpfs"
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
	fail "mount overlay"
R=/newroot
mount --move /proc $R/proc
mount --move /sys $R/sys
mount --move /dev $R/dev
mount -t tmpfs -o mode=755,nosuid,nodev run $R/run
mkdir -p $R/run/ms-vm/xfer $R/dev/pts $R/dev/shm
mount --move /xfer $R/run/ms-vm/xfer
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm $R/dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || fail "mount cgroup2"
mount -t bpf -o mode=700 bpf $R/sys/fs/bpf || fail "mount bpffs"
# the kernel's modules where kmod looks for them (the cache, seen through 9p)
mkdir -p "$R/lib/modules/$MS_ABI"
mount --bind "$R$MS_MODDIR" "$R/lib/modules/$MS_ABI" || fail "bind the modules"
cp /bin/busybox /stage2 $R/run/ms-vm/
exec switch_root $R /run/ms-vm/busybox sh /run/ms-vm/stage2
# ---- end init
# ---- stage2
# PID 1 in the overlay root: a node-like environment, COMMAND, power-off.
B=/run/ms-vm/busybox
X=/run/ms-vm/xfer
$B stty -F /dev/console -onlcr 2>/dev/null
# as systemd does: shared mounts, every controller enabled for children
$B mount --make-rshared /
for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
$B hostname ms-vm
$B ip link set lo up
/sbin/modprobe -q -a $($B cat $X/preload) 2>/dev/null
echo "MS-VM-UP"
/bin/bash $X/cmd </dev/null
echo $? >$X/status
echo "MS-VM-DONE"
$B sync
$B poweroff -f
$B sleep 10
# ---- end stage2
GUEST

# ---- accelerator --------------------------------------------------------------

# qemu's command line for kernel ABI $1 with accelerator $2, extra cmdline $3
qemu_args() {
	local abi=$1 accel=$2 extra=$3 dir=$CACHE/k-$1 cpu=max loglevel="quiet loglevel=4"
	local kernel=$dir/root/boot/vmlinuz-$abi
	[ -f "$dir/vmlinux" ] && kernel=$dir/vmlinux
	[ "$accel" = kvm ] && cpu=host
	[ "$accel" = tcg ] && accel=tcg,thread=multi
	[ $VERBOSE -eq 1 ] && loglevel="loglevel=7"
	QEMU=(qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot
		-machine pc -accel "$accel" -cpu "$cpu" -smp 2 -m "$MEM"
		-kernel "$kernel" -initrd "$dir/initramfs.gz"
		-append "console=ttyS0 $loglevel panic=-1 tsc=reliable $extra"
		-chardev stdio,id=con,signal=off -serial chardev:con -nic none)
}

# Does a KVM guest boot here? A probe boot with a short timeout, remembered
# per host kernel and qemu: under nested virtualisation a KVM guest can be
# far slower than TCG (on our 6.18 hosts it is still in setup_arch after 60 s).
pick_accel() {
	local abi=$1 memo out t0
	[ "$ACCEL" != auto ] && { echo "$ACCEL"; return; }
	if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
		echo tcg
		return
	fi
	memo=$CACHE/accel-$(uname -r)-$(qemu-system-x86_64 --version | awk 'NR == 1 { print $4 }')
	[ -f "$memo" ] && { cat "$memo"; return; }
	qemu_args "$abi" kvm "ms.probe"
	t0=$EPOCHREALTIME
	out=$(timeout -k 2 20 "${QEMU[@]}" </dev/null 2>&1 || true)
	if grep -q MS-VM-PROBE-OK <<<"$out"; then
		say "KVM probe booted in $(elapsed "$t0") s: using KVM"
		echo kvm >"$memo"
	else
		say "KVM probe did not reach userspace within 20 s ($(tail -1 <<<"$out" | cut -c1-120)): using TCG"
		echo tcg >"$memo"
	fi
	cat "$memo"
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---- run ------------------------------------------------------------------------

[ "$(uname -m)" = x86_64 ] || skip "only x86_64 hosts"
ensure_packages
mkdir -p "$CACHE" 2>/dev/null || skip "cannot create the cache $CACHE"
CACHE=$(cd "$CACHE" && pwd -P)
case $CACHE in *[[:space:]]*) die "the cache path may not contain blanks: $CACHE" ;; esac

exec 9>"$CACHE/.lock"
flock 9
if [[ $KERNEL =~ ^[0-9]+\.[0-9]+$ ]]; then
	ABI=$(cached_abi "$KERNEL")
	[ -n "$ABI" ] || ABI=$(apt_abi "$KERNEL")
	[ -n "$ABI" ] || skip "no linux-image-$KERNEL.*-amd64-unsigned package known to apt"
else
	ABI=$KERNEL
fi
fetch_kernel "$ABI"
build_initramfs "$ABI"
accel=$(pick_accel "$ABI")
flock -u 9

# $HT: the host's side of a run (qemu's pid and stderr, the boot log);
# $HT/xfer: what the guest sees of it (its setup, COMMAND, COMMAND's status)
HT=$(mktemp -d "${TMPDIR:-/tmp}/ms-vm.XXXXXX")
XFER=$HT/xfer
mkdir "$XFER"
TIMEOUT_PID=
cleanup() {
	local pid
	set +e
	# timeout passes the signal on to qemu; the pid file (which qemu removes
	# when it exits) covers a qemu that outlived it
	pid=$(cat "$HT/qemu.pid" 2>/dev/null)
	[ -n "$TIMEOUT_PID" ] && kill -TERM "$TIMEOUT_PID" 2>/dev/null
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$HT"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

{
	echo "MS_ABI=$ABI"
	echo "MS_MODDIR=$CACHE/k-$ABI/root/lib/modules/$ABI"
} >"$XFER/boot.env"
echo "${PRELOAD_MODULES[*]}" >"$XFER/preload"
# pyenv's shims run bash and pyenv at each call (about a second each under
# TCG, ten on a cold cache): the guest gets the directory they would pick first
guest_path() {
	local root dir
	if command -v pyenv >/dev/null && root=$(pyenv root 2>/dev/null) &&
		[[ ":$PATH:" == *":$root/shims:"* ]] && dir=$(pyenv prefix 2>/dev/null) &&
		[ -x "$dir/bin/python3" ]; then
		echo "${PATH//"$root/shims"/$dir/bin:$root/shims}"
	else
		echo "$PATH"
	fi
}
PATH=$(guest_path)
{
	for v in "${PASS_ENV[@]}" $(compgen -e | grep '^MS_' || true); do
		[ -n "${!v+set}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'cd %q || exit %d\n' "$PWD" $EXIT_VM
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$XFER/cmd"

qemu_args "$ABI" "$accel" ""
QEMU+=(-pidfile "$HT/qemu.pid"
	-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
	-device virtio-9p-pci,fsdev=root,mount_tag=hostroot
	-fsdev "local,id=xfer,path=$XFER,security_model=none"
	-device virtio-9p-pci,fsdev=xfer,mount_tag=msxfer)

# The console: boot messages are kept aside (shown on failure or with
# --verbose), COMMAND's output goes to stdout.
console() {
	local line up=0
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		if [ $up -eq 0 ]; then
			# (the firmware's and the kernel's escapes may precede it)
			if [[ $line == *MS-VM-UP ]]; then
				up=1
				elapsed "$T0" >"$HT/boot-time"
				[ $VERBOSE -eq 1 ] && say "up in $(cat "$HT/boot-time") s"
				continue
			fi
			echo "$line" >>"$HT/boot.log"
			[ $VERBOSE -eq 1 ] && echo "$line" >&2
		elif [[ $line == *MS-VM-DONE ]]; then
			# (after output that did not end its last line)
			[ -n "${line%MS-VM-DONE}" ] && echo "${line%MS-VM-DONE}"
			up=2
		elif [ $up -eq 1 ]; then
			echo "$line"
		fi
	done
}

# qemu and the console in the background, so that a signal to us is handled
# at once (the EXIT trap stops qemu) rather than when qemu ends
T0=$EPOCHREALTIME
mkfifo "$HT/console"
console <"$HT/console" &
CONSOLE_PID=$!
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$HT/console" 2>"$HT/qemu.err" &
TIMEOUT_PID=$!
rc=0
wait $TIMEOUT_PID || rc=$?
TIMEOUT_PID=
wait $CONSOLE_PID || true
if [ -f "$XFER/status" ]; then
	rc=$(cat "$XFER/status")
	[ $VERBOSE -eq 1 ] && say "kernel $ABI ($accel): up in $(cat "$HT/boot-time" 2>/dev/null) s," \
		"COMMAND exited $rc after $(elapsed "$T0") s in all"
	exit "$rc"
fi
if [ "$rc" -eq 124 ]; then
	say "timeout: COMMAND did not finish within ${TIMEOUT}s (kernel $ABI, $accel)"
	exit $EXIT_TIMEOUT
fi
say "the VM stopped before COMMAND finished (qemu exit $rc, kernel $ABI, $accel)"
cat "$HT/qemu.err" >&2
tail -30 "$HT/boot.log" >&2 2>/dev/null || true
exit $EXIT_VM
