#!/usr/bin/env python3
"""The Linux suite: Debian's kernel (L2) with busybox user space booted by
vmm, each check a real boot that proves a device or an exit through Linux's
own drivers, as a user would see it. Prints TAP (one line per fact checked).

It needs a KVM that runs Linux user space: the nested lane's L1
(tests/nested/l1, where meson runs it: `meson test --suite nested`) or any
hardware-virtualization host. On a PVM host it skips (user space there
cannot make a system call: tests/linux/pvm/BOOT_LOG.md).

  suite.py --vmm VMM --l2tool L2TOOL [--linux-dir build/linux]
           [--work-dir /var/tmp/vmm-linux] [--only CHECK,...] [--list]

Each boot's console is kept in the work dir as CHECK.console; a failed
check prints its tail. Guest side: tests/linux/l2-init.
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import initramfs  # noqa: E402

# Transports first, so that disks are named in bus order (the first PCI
# disk is vda), then the drivers.
L2_MODULES = [
    "virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net", "virtio_console",
    "virtio_rng", "vmw_vsock_virtio_transport", "pvpanic_mmio", "crc32c_generic",
    "ext4", "virtiofs", "button", "evdev",
]
MiB = 1 << 20


class Tap:
    """TAP output; the plan comes at the end."""

    def __init__(self):
        self.count = 0
        self.failed = 0

    def check(self, name, ok, diagnostic=""):
        self.count += 1
        if not ok:
            self.failed += 1
        print(f"{'ok' if ok else 'not ok'} {self.count} - {name}", flush=True)
        if not ok and diagnostic:
            for line in str(diagnostic).splitlines():
                print(f"# {line}", flush=True)
        return ok

    def skip(self, name, reason):
        """A check that cannot run here: a TAP skip, and loud."""
        self.count += 1
        print(f"ok {self.count} - {name} # SKIP {reason}", flush=True)
        print(f"# ###### SKIPPED: {name}: {reason}", file=sys.stderr, flush=True)

    def diag(self, text):
        for line in str(text).splitlines():
            print(f"# {line}", flush=True)


class Boot:
    """One vmm run of the L2 kernel; the console goes to NAME.console."""

    def __init__(self, suite, name, check, vmm_args=(), cmdline="", timeout=150, serial="file",
                 restore=None, qemu_args=None):
        """serial="pty": COM1 on a pty (--serial pty) that a thread copies
        into NAME.console; write_serial() types into it. restore=DIR: start
        from the snapshot in DIR (--restore) instead of booting: no kernel,
        initrd or command line. qemu_args=[...]: the same guest under QEMU's
        microvm (the peer, for benchmarks): those devices, COM1 to the
        console file, no --timeout (finish() kills it after `timeout`)."""
        self.suite = suite
        self.name = name
        self.console_path = os.path.join(suite.work, f"{name}.console")
        if os.path.exists(self.console_path):
            os.remove(self.console_path)
        self.stderr_path = os.path.join(suite.work, f"{name}.stderr")
        # dis_ucode_ldr: the nested lane's L1 twice stopped for good with its
        # L2 in the AMD microcode loader's MSR access as a CPU came up
        # (QEMU's SVM emulation; tests/nested/README.md, "Flakes"). A guest
        # has no microcode to load anyway.
        kernel_cmdline = f"console=ttyS0 quiet dis_ucode_ldr check={check} {cmdline}".strip()
        boot = ["--restore", restore] if restore else [
            "--kernel", suite.kernel, "--initrd", suite.initrd, "--cmdline", kernel_cmdline]
        self.cmd = [suite.vmm, *boot,
                    "--serial", "pty" if serial == "pty" else f"file={self.console_path}",
                    "--timeout", str(timeout), *vmm_args]
        if qemu_args is not None:
            self.cmd = [shutil.which("qemu-system-x86_64") or "qemu-system-x86_64",
                        "-M", "microvm,pcie=on", "-enable-kvm", "-cpu", "host",
                        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                        "-serial", f"file:{self.console_path}", "-kernel", suite.kernel,
                        "-initrd", suite.initrd, "-append", kernel_cmdline, *qemu_args]
            timeout -= 60  # finish() waits a minute more than vmm's own --timeout
        self.timeout = timeout
        self.start = time.monotonic()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.status = None
        self.pty = None
        self.pty_error = None
        self.reader_paused_until = 0.0
        if serial == "pty":
            self.pty_ready = threading.Event()
            self.reader = threading.Thread(target=self._copy_pty, daemon=True)
            self.reader.start()
            self.pty_ready.wait(timeout=60)

    def _copy_pty(self):
        """Opens the pty vmm names on stderr and copies what the guest
        writes into the console file until vmm exits."""
        try:
            deadline = time.monotonic() + 60
            m = None
            while m is None and time.monotonic() < deadline and self.proc.poll() is None:
                m = re.search(r"COM1 \(ttyS0\) is on (/dev/pts/\d+)", self.stderr())
                time.sleep(0.05)
            if m is None:
                raise RuntimeError("vmm named no pty on stderr")
            self.pty = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
        except Exception as e:  # reported by the check that needs the pty
            self.pty_error = f"{type(e).__name__}: {e}"
            return
        finally:
            self.pty_ready.set()
        with open(self.console_path, "ab") as out:
            # Until vmm exits, then what it wrote last (the guest's closing
            # facts, written just before it powered off) is drained: seen
            # lost once when the loop stopped at the exit.
            exited = False
            while True:
                if not exited and time.monotonic() < self.reader_paused_until:
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([self.pty], [], [], 0 if exited else 0.2)
                if not ready:
                    if exited:
                        break
                    exited = self.proc.poll() is not None
                    continue
                try:
                    chunk = os.read(self.pty, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out.write(chunk)
                out.flush()

    def write_serial(self, data):
        os.write(self.pty, data)

    def console(self):
        try:
            with open(self.console_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, pattern, timeout=120):
        """The first match of `pattern` on the console, or None once vmm has
        exited or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.console())
            if m:
                return m
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return regex.search(self.console())
            time.sleep(0.2)

    def finish(self):
        """vmm's exit status (it has --timeout; this waits a minute more)."""
        try:
            self.status = self.proc.wait(timeout=self.timeout + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.status = self.proc.wait()
        self.seconds = time.monotonic() - self.start
        return self.status

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.status = self.proc.wait()
        self.seconds = time.monotonic() - self.start
        return self.status

    def facts(self):
        out = {}
        # Anywhere in a line: a shell's prompt (busybox's "/ # " and its
        # cursor query, ESC [6n) or a kernel message may share the console
        # line the fact is printed on.
        for key, value in re.findall(r"l2: fact ([\w-]+)=(.*?)\r?$", self.console(), re.M):
            out.setdefault(key, []).append(value)
        return out

    def fact(self, key):
        values = self.facts().get(key)
        return values[-1] if values else None

    def report(self):
        """What to print when a check of this boot failed."""
        lines = self.console().splitlines()[-25:]
        return "\n".join([f"vmm: {' '.join(self.cmd)}",
                          f"vmm exited {self.status}; stderr: {self.stderr().strip()}",
                          f"console ({self.console_path}) ends:"] + lines)


class Suite:
    def __init__(self, args):
        self.vmm = os.path.realpath(args.vmm)
        self.kernel = os.path.realpath(os.path.join(args.linux_dir, "vmlinuz"))
        self.linux_dir = os.path.realpath(args.linux_dir)
        self.work = args.work_dir
        # In the nested lane the image is L1's disk (tests/nested/l1 --disk,
        # copy-on-write): booted in place. Elsewhere the file is copied.
        in_l1 = "/dev/l1-disk-debian-root"
        self.debian_root = args.debian_root or (
            in_l1 if os.path.exists(in_l1) else os.path.join(args.linux_dir, "debian12-root.img"))
        self.tap = Tap()
        self.throughput = {}  # check -> (guest->peer, peer->guest) MiB/s
        self.l2tool = args.l2tool
        self.busybox = shutil.which("busybox")
        self.tree = initramfs.ModuleTree.find(args.linux_dir)
        os.makedirs(self.work, exist_ok=True)
        self.initrd = os.path.join(self.work, "l2-initramfs.cpio")
        cpio = initramfs.Cpio()
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "newroot"):
            cpio.dir(d)
        cpio.chardev("dev/console", 5, 1)
        cpio.copy("bin/busybox", self.busybox, 0o755)
        cpio.copy("bin/l2tool", self.l2tool, 0o755)
        cpio.copy("init", os.path.join(HERE, "l2-init"), 0o755)
        self.tree.add_to(cpio, L2_MODULES)
        cpio.write(self.initrd)

    def path(self, name):
        return os.path.join(self.work, name)

    def expect(self, boot, name, ok, detail=""):
        diag = (detail + "\n" if detail else "") + boot.report()
        return self.tap.check(f"{boot.name}: {name}", ok, diag)

    def expect_fact(self, boot, key, want):
        got = boot.fact(key)
        ok = want(got) if callable(want) else got == want
        return self.expect(boot, f"{key} = {got!r}", ok,
                           "" if callable(want) else f"expected {want!r}")

    def expect_exit(self, boot, want, what):
        status = boot.finish()
        return self.expect(boot, f"vmm exits {want} ({what}) in {boot.seconds:.1f} s",
                           status == want, f"vmm exited {status}")

    def no_failures(self, boot):
        fails = re.findall(r"^l2: FAIL (.*)$", boot.console(), re.M)
        self.expect(boot, "the guest reported no failed step", not fails, "\n".join(fails))


def raw_image(path, size, head=b"", fill=b"\0"):
    """A raw image of `size` bytes: `head`, then `fill` (zeroes stay sparse)."""
    with open(path, "wb") as f:
        if fill == b"\0":
            f.write(head)
            f.truncate(size)
        else:
            f.write((head + fill * size)[:size])


def ext4_image(path, size_mib, files):
    """An ext4 image made with mke2fs -d from `files` {path: bytes or None
    for a directory}."""
    staging = path + ".d"
    shutil.rmtree(staging, ignore_errors=True)
    for name, data in files.items():
        dest = os.path.join(staging, name)
        if data is None:
            os.makedirs(dest, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if isinstance(data, tuple):  # (host file to copy, mode)
            shutil.copy(data[0], dest)
            os.chmod(dest, data[1])
        else:
            with open(dest, "wb") as f:
                f.write(data)
    os.makedirs(staging, exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    # 4 KiB blocks whatever the size (mke2fs picks 1 KiB for small images):
    # the page size, as on a distro's disks.
    # Its "Creating regular file" line (printed even with -q) would break
    # the TAP stream: kept, and shown only if it fails.
    made = subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", staging, path,
                           f"{size_mib}M"], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"mke2fs {path}: {made.stdout.strip()} {made.stderr.strip()}")
    shutil.rmtree(staging)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def is_hole(path, start, length):
    """True when [start, start+length) of `path` holds no data (sparse)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            data_at = os.lseek(fd, start, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after start
            return True
        return data_at >= start + length
    finally:
        os.close(fd)


def data_map(path, start, length):
    """[(offset, length)] of the data (non-hole) ranges in [start, start+length)."""
    out, fd, at, end = [], os.open(path, os.O_RDONLY), start, start + length
    try:
        while at < end:
            try:
                data = os.lseek(fd, at, os.SEEK_DATA)
            except OSError:
                break
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            out.append((data, hole - data))
            at = hole
    finally:
        os.close(fd)
    return out


def read_range(path, start, length):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


# --- checks ---------------------------------------------------------------

def check_smp(s):
    """1, 2 and 4 vCPUs online; 6 GiB of RAM shows up whole (above the
    MMIO hole)."""
    for cpus, memory in ((1, "256M"), (2, "256M"), (4, "6G")):
        b = Boot(s, f"smp-{cpus}", "smp", ["--cpus", str(cpus), "--memory", memory])
        s.expect_exit(b, 0, "powered off")
        s.expect_fact(b, "cpus-online", "0" if cpus == 1 else f"0-{cpus - 1}")
        if memory == "6G":
            # The kernel's own reservations take ~100-200 MiB.
            s.expect_fact(b, "memtotal-kb", lambda v: v is not None and int(v) > 5800 * 1024)


def check_disks(s):
    """Root on ext4 over virtio-pci (switch_root, as distros do), a disk
    over virtio-mmio found through ACPI, a read-only disk; e2fsck and the
    guest's files afterwards."""
    root = s.path("root.img")
    ext4_image(root, 64, {
        "bin/busybox": (s.busybox, 0o755), "sbin/init": (os.path.join(HERE, "l2-init"), 0o755),
        "bin/l2tool": (s.l2tool, 0o755), "proc": None, "sys": None, "dev": None,
        "tmp": None, "mnt": None})
    disk_b = s.path("disk-b.img")
    raw_image(disk_b, MiB, b"VMM-DISK-B\n")
    disk_c = s.path("disk-c.img")
    ext4_image(disk_c, 8, {"hello.txt": b"read-only disk"})
    c_before = sha256(disk_c)
    b = Boot(s, "disks", "disks",
             ["--cpus", "2", "--disk", f"path={root},serial=root",
              "--disk", f"path={disk_b},serial=disk-b,transport=mmio",
              "--disk", f"path={disk_c},serial=disk-c,readonly=on"],
             cmdline="root=/dev/vda")
    s.expect_exit(b, 0, "powered off")
    s.no_failures(b)
    s.expect_fact(b, "root", "/dev/vda ext4 rw")
    s.expect_fact(b, "root-transport", "pci")
    s.expect_fact(b, "cpus-online", "0-1")
    s.expect_fact(b, "disk-b", "mmio-acpi VMM-DISK-B")
    s.expect_fact(b, "disk-c-ro", "1")
    s.expect_fact(b, "disk-c-content", "read-only disk")
    s.expect_fact(b, "disk-c-write", "Read-only file system")
    s.expect_fact(b, "disk-c-raw-write",
                  lambda v: v in ("Operation not permitted", "Read-only file system"))
    fsck = subprocess.run(["e2fsck", "-fn", root], capture_output=True, text=True)
    s.expect(b, "e2fsck -fn finds the root file system clean", fsck.returncode == 0,
             fsck.stdout + fsck.stderr)
    got = subprocess.run(["debugfs", "-R", "cat /from-l2.txt", root],
                         capture_output=True, text=True).stdout
    s.expect(b, "the host reads the guest's /from-l2.txt", got.startswith("written by L2"), got)
    got = subprocess.run(["debugfs", "-R", "cat /l2-dir/numbers", root],
                         capture_output=True, text=True).stdout
    s.expect(b, "the host reads the guest's /l2-dir/numbers",
             got == "".join(f"{i}\n" for i in range(1, 1001)), got[:200])
    s.expect(b, "the read-only image is unchanged", sha256(disk_c) == c_before)


def check_discard(s):
    """blkdiscard and write-zeroes on a raw disk, a punched file on ext4
    -o discard: the host's image gets holes and zeroes."""
    raw = s.path("discard-raw.img")
    raw_image(raw, 16 * MiB, fill=b"\xaa")
    fs = s.path("discard-fs.img")
    ext4_image(fs, 64, {})
    b = Boot(s, "discard", "discard",
             ["--disk", f"path={raw},serial=raw", "--disk", f"path={fs},serial=fs"])
    s.expect_exit(b, 0, "powered off")
    s.no_failures(b)
    s.expect_fact(b, "discard-max", lambda v: v is not None and int(v) > 0)
    s.expect_fact(b, "write-zeroes-max", lambda v: v is not None and int(v) > 0)
    for key in ("blkdiscard", "zero-range", "punch-hole", "fs-punch", "fs-umount"):
        s.expect_fact(b, key, "ok")
    s.expect(b, "blkdiscard left a hole at [0, 4 MiB)", is_hole(raw, 0, 4 * MiB))
    s.expect(b, "write-zeroes left zeroes at [4, 12 MiB)",
             read_range(raw, 4 * MiB, 8 * MiB) == bytes(8 * MiB))
    s.expect(b, "[12, 16 MiB) is untouched",
             read_range(raw, 12 * MiB, 4 * MiB) == b"\xaa" * (4 * MiB))
    extents = [tuple(int(x) for x in v.split()) for v in b.facts().get("fs-extent", [])]
    s.expect(b, f"the file had extents ({len(extents)})", bool(extents))
    holes = [e for e in extents if is_hole(fs, e[0], e[1])]
    s.expect(b, "ext4's discards of the punched file reached the image as holes",
             extents and len(holes) == len(extents),
             f"extents {extents}, holes {holes}, data there: "
             f"{[data_map(fs, e[0], e[1]) for e in extents]}")


def check_flush(s):
    """A write and sync in the guest, then SIGKILL of vmm: the write is in
    the image."""
    img = s.path("flush.img")
    raw_image(img, MiB)
    b = Boot(s, "flush", "flush", ["--disk", f"path={img},serial=flush"])
    m = b.wait_for(r"l2: fact flushed=(\S+)")
    status = b.kill() if m else b.finish()
    s.expect(b, "the guest synced its write", m is not None)
    s.expect(b, "vmm was killed (SIGKILL)", status == -signal.SIGKILL, f"status {status}")
    if m:
        want = f"VMM-FLUSH {m.group(1)}\n".encode()
        got = read_range(img, 0, len(want))
        s.expect(b, "the synced write is in the image", got == want, repr(got))


def ip(*argv):
    subprocess.run(["ip", *argv], check=True, capture_output=True)


def check_net(s):
    """virtio-net on a multiqueue tap: two queue pairs, offloads, ping, and
    64 MiB over TCP each way between the guest and a peer on the tap, with
    a checksum; then the driver unbinds and binds again (a reset and a new
    activation) and ping still works."""
    net_transfer(s, "net", vhost=False)


def check_net_vhost(s):
    """The same with vhost=on: the data path in L1's kernel (vhost-net, one
    per queue pair), the control queue in vmm — the rebind stops and starts
    vhost's rings; and each way's throughput beside the in-VMM data path's
    when net ran first."""
    if not os.path.exists("/dev/vhost-net"):
        s.tap.skip("net-vhost", "no /dev/vhost-net (modprobe vhost_net)")
        return
    net_transfer(s, "net-vhost", vhost=True)
    diag_throughput_ratio(s, "net-vhost", "net", "vhost-net / in-VMM throughput")


def check_net_qemu(s):
    """A peer, not a test (bench/nested-boot --net runs it): the net check's
    guest and transfers under QEMU's microvm (PCIe, virtio-net-pci with two
    queue pairs on the same multiqueue tap, its data path in QEMU: vhost
    off), and each way's throughput beside vmm's when net ran first."""
    if not shutil.which("qemu-system-x86_64"):
        s.tap.skip("net-qemu", "no qemu-system-x86_64")
        return
    net_transfer(s, "net-qemu", vhost=False, qemu=True)
    diag_throughput_ratio(s, "net", "net-qemu", "vmm / QEMU throughput", on="net-qemu")


def diag_throughput_ratio(s, over, under, what, on=None):
    """Prints each way's throughput of check `over` divided by check
    `under`'s (both from this run, the same L1) as a diagnostic of check
    `on` (default `over`), when both ran."""
    if over in s.throughput and under in s.throughput:
        (out1, in1), (out0, in0) = s.throughput[over], s.throughput[under]
        s.tap.diag(f"{on or over}: {what}, same L1: guest->peer "
                   f"{out1 / out0:.2f}x, peer->guest {in1 / in0:.2f}x")


def timing_rates(timing):
    """MiB/s of the 64 MiB sent and received, from the guest's net-timing
    fact ("T0 made:T1 hashed:T2 sent:T3 received:T4 hashed:T5": uptime at
    each step), or None."""
    try:
        marks = [part.split(":") for part in timing.split()[1:]]
        at = {}
        for step, t in marks:
            at.setdefault(step, float(t))  # the first "hashed" is before sending
        return 64 / (at["sent"] - at["hashed"]), 64 / (at["received"] - at["sent"])
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def net_transfer(s, name, vhost, qemu=False):
    tap = "vmmtap0"
    subprocess.run(["ip", "link", "del", tap], capture_output=True)
    ip("tuntap", "add", "dev", tap, "mode", "tap", "multi_queue")
    try:
        ip("addr", "add", "10.0.2.1/24", "dev", tap)
        ip("link", "set", tap, "up")
        def listen(port):
            """The peer's side of one transfer: a socket on the tap's
            address waiting (5 minutes at most) for the guest."""
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("10.0.2.1", port))
            sock.listen(1)
            sock.settimeout(300)
            return sock

        listener = listen(5000)
        received = {}

        def receive():
            try:
                conn, _ = listener.accept()
                digest, n = hashlib.sha256(), 0
                conn.settimeout(120)
                while n < 64 * MiB:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        break
                    digest.update(chunk)
                    n += len(chunk)
                conn.close()
                received.update(bytes=n, sha256=digest.hexdigest())
            except OSError as e:
                received["error"] = str(e)

        # The other way: the guest connects to 5001 and reads 64 MiB.
        payload = os.urandom(64 * MiB)
        sender = listen(5001)
        sent = {}

        def send():
            try:
                conn, _ = sender.accept()
                conn.settimeout(120)
                conn.sendall(payload)
                conn.close()
                sent["bytes"] = len(payload)
            except OSError as e:
                sent["error"] = str(e)

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        send_thread = threading.Thread(target=send, daemon=True)
        send_thread.start()
        # 64 MiB each way, made and checksummed in the guest: minutes in a
        # one-vCPU L1 shared by the guest's two vCPUs, vmm and the peer.
        b = Boot(s, name, "net", ["--cpus", "2", "--memory", "512M", "--stats", "--net",
                                  f"tap={tap},queues=2" + (",vhost=on" if vhost else "")],
                 timeout=450,
                 qemu_args=["-smp", "2", "-m", "512M", "-netdev",
                            f"tap,id=n0,ifname={tap},script=no,downscript=no,queues=2,vhost=off",
                            "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=6"]
                 if qemu else None)
        s.expect_exit(b, 0, "powered off")
        for line in re.findall(r"^vmm: stats: virtio-net .*", b.stderr(), re.M):
            s.tap.diag(f"{name}: {line}")  # where a slow transfer's time went
        # The same for any VMM, from the tap's side: frames from the guest
        # (the tap's rx) and to it, and their mean size (TSO at work or not).
        tap_stats = {}
        for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
            with open(f"/sys/class/net/{tap}/statistics/{key}") as f:
                tap_stats[key] = int(f.read())
        s.tap.diag(f"{name}: tap: {tap_stats['rx_packets']} frames from the guest "
                   f"(mean {tap_stats['rx_bytes'] // max(tap_stats['rx_packets'], 1)} bytes), "
                   f"{tap_stats['tx_packets']} to it "
                   f"(mean {tap_stats['tx_bytes'] // max(tap_stats['tx_packets'], 1)} bytes)")
        thread.join(timeout=30)
        send_thread.join(timeout=30)
        listener.close()
        sender.close()
        s.no_failures(b)
        s.expect_fact(b, "net-queues", "rx-0 rx-1 tx-0 tx-1 ")
        features = b.fact("net-features") or ""

        def bit(n):
            return len(features) > n and features[n] == "1"
        # VIRTIO_NET_F_CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, HOST_TSO4 11,
        # MRG_RXBUF 15, MQ 22, VERSION_1 32.
        for feature, n in (("CSUM", 0), ("GUEST_CSUM", 1), ("GUEST_TSO4", 7), ("HOST_TSO4", 11),
                           ("MRG_RXBUF", 15), ("MQ", 22), ("VERSION_1", 32)):
            s.expect(b, f"negotiated VIRTIO_NET_F_{feature}", bit(n), f"features {features}")
        s.expect_fact(b, "ping", "ok")
        s.expect_fact(b, "tcp-sent", "ok")
        s.expect(b, "the peer received 64 MiB with the guest's sha256",
                 received.get("bytes") == 64 * MiB and
                 received.get("sha256") == b.fact("tcp-sha256"), f"received {received}")
        s.tap.diag(f"{name}: guest uptime at each step: {b.fact('net-timing')}")
        s.tap.diag(f"{name}: guest clocksource {b.fact('net-clocksource')}; "
                   f"interrupts by vector: {b.fact('net-irqs')}")
        rates = timing_rates(b.fact("net-timing") or "")
        if rates:
            s.throughput[name] = rates
            s.tap.diag(f"{name}: TCP guest->peer {rates[0]:.1f} MiB/s, "
                       f"peer->guest {rates[1]:.1f} MiB/s")
        s.expect_fact(b, "tcp-received", "ok")
        s.expect(b, "the guest received the peer's 64 MiB with its sha256",
                 b.fact("tcp-in-bytes") == str(64 * MiB) and
                 b.fact("tcp-in-sha256") == hashlib.sha256(payload).hexdigest(),
                 f"peer sent {sent}; guest got {b.fact('tcp-in-bytes')} bytes, "
                 f"sha256 {b.fact('tcp-in-sha256')}")
        # After the driver's unbind and bind: a reset, a new activation.
        s.expect_fact(b, "rebind-ping", "ok")
    finally:
        subprocess.run(["ip", "link", "del", tap], capture_output=True)


def check_devices(s):
    """hvc0 both ways through --console socket=, /dev/hwrng from
    virtio-rng, vsock both ways through vmm's Unix-socket bridge."""
    sockdir = "/tmp/vmm-l2-sockets"
    shutil.rmtree(sockdir, ignore_errors=True)
    os.makedirs(sockdir)
    console_sock = f"{sockdir}/console"
    vsock = f"{sockdir}/vsock"
    # The guest's connection to host port 6000 lands on vsock_6000.
    peer = socket.socket(socket.AF_UNIX)
    peer.bind(f"{vsock}_6000")
    peer.listen(1)
    peer.settimeout(200)
    peer_got = {}

    def serve_peer():
        try:
            conn, _ = peer.accept()
            conn.settimeout(30)
            line = conn.makefile("rb").readline()
            peer_got["line"] = line
            conn.sendall(b"echo:" + line)
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        except OSError as e:
            peer_got["error"] = str(e)

    thread = threading.Thread(target=serve_peer, daemon=True)
    thread.start()
    b = Boot(s, "devices", "devices",
             ["--console", f"socket={console_sock}", "--vsock", f"cid=3,socket={vsock}"])
    try:
        listening = b.wait_for(r"l2: fact vsock-listening=5000")
        echoed = None
        if listening:
            conn = socket.socket(socket.AF_UNIX)
            conn.settimeout(30)
            conn.connect(vsock)
            conn.sendall(b"CONNECT 5000\n")
            f = conn.makefile("rb")
            ok_line = f.readline()
            conn.sendall(b"hello-from-l1\n")
            echoed = f.readline()
            f.close()  # the file holds the socket open: close both, so the guest sees EOF
            conn.close()
            s.expect(b, f"host -> guest vsock: vmm answered {ok_line!r}",
                     ok_line.startswith(b"OK "))
        s.expect(b, "host -> guest vsock: the guest echoed our line",
                 echoed == b"hello-from-l1\n", repr(echoed))
        shell = b.wait_for(r"l2: fact hvc0-shell=ready")
        seen = b""
        if shell:
            conn = socket.socket(socket.AF_UNIX)
            conn.settimeout(5)
            conn.connect(console_sock)
            conn.sendall(b"echo hvc-$((6*7)); touch /tmp/hvc-done\n")
            deadline = time.monotonic() + 60
            while b"hvc-42" not in seen and time.monotonic() < deadline:
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                seen += chunk
            conn.close()
        s.expect(b, "hvc0: a shell on the guest's console ran our command (hvc-42 came back)",
                 b"hvc-42" in seen, repr(seen[-200:]))
    finally:
        s.expect_exit(b, 0, "powered off")
        thread.join(timeout=5)
        peer.close()
    s.no_failures(b)
    s.expect_fact(b, "rng-current", "virtio_rng.0")
    s.expect_fact(b, "hwrng", lambda v: v is not None and re.fullmatch("[0-9a-f]{64}", v)
                  and v != "0" * 64)
    s.expect_fact(b, "vsock-echo-exit", "0")
    s.expect(b, "guest -> host vsock: the host's listener on port 6000 got the line",
             peer_got.get("line") == b"hello-from-l2\n", repr(peer_got))
    s.expect_fact(b, "vsock-reply", "echo:hello-from-l2")
    s.expect_fact(b, "hvc0-done", "yes")
    shutil.rmtree(sockdir, ignore_errors=True)


def check_vsock_vhost(s):
    """virtio-vsock with backend=vhost: L1's own AF_VSOCK reaches the guest
    at its CID (as socat VSOCK-CONNECT would), and the guest's connection to
    CID 2 lands on an AF_VSOCK listener in L1; no vmm in between."""
    if not os.path.exists("/dev/vhost-vsock"):
        s.tap.skip("vsock-vhost", "no /dev/vhost-vsock (modprobe vhost_vsock)")
        return
    cid = 7
    peer = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    peer.bind((socket.VMADDR_CID_ANY, 6000))
    peer.listen(1)
    peer.settimeout(200)
    peer_got = {}

    def serve_peer():
        try:
            conn, (from_cid, _) = peer.accept()
            conn.settimeout(30)
            line = conn.makefile("rb").readline()
            peer_got.update(line=line, cid=from_cid)
            conn.sendall(b"echo:" + line)
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        except OSError as e:
            peer_got["error"] = str(e)

    thread = threading.Thread(target=serve_peer, daemon=True)
    thread.start()
    b = Boot(s, "vsock-vhost", "vsock_vhost", ["--vsock", f"cid={cid},backend=vhost"])
    try:
        echoed = None
        if b.wait_for(r"l2: fact vsock-listening=5000"):
            conn = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            conn.settimeout(30)
            try:
                conn.connect((cid, 5000))
                conn.sendall(b"hello-over-vhost\n")
                f = conn.makefile("rb")
                echoed = f.readline()
                f.close()
            except OSError as e:
                echoed = f"{type(e).__name__}: {e}".encode()
            conn.close()
        s.expect(b, f"host -> guest: L1's AF_VSOCK reached CID {cid} and the guest echoed our line",
                 echoed == b"hello-over-vhost\n", repr(echoed))
    finally:
        s.expect_exit(b, 0, "powered off")
        thread.join(timeout=5)
        peer.close()
    s.no_failures(b)
    s.expect_fact(b, "vsock-echo-exit", "0")
    s.expect(b, f"guest -> host: L1's AF_VSOCK listener got the line from CID {cid}",
             peer_got.get("line") == b"hello-from-l2\n" and peer_got.get("cid") == cid,
             repr(peer_got))
    s.expect_fact(b, "vsock-reply", "echo:hello-from-l2")


# What the guests' `seq 1 50000 > FILE` writes, as sha256.
SEQ_50000_SHA256 = hashlib.sha256(
    "".join(f"{i}\n" for i in range(1, 50001)).encode()).hexdigest()


def unix_socket_listening(path):
    """True once a Unix socket bound at `path` listens (its __SO_ACCEPTCON
    flag in /proc/net/unix). The file alone is not enough: it appears at
    bind(), and a connect() before listen() is refused."""
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return True
    return False


@contextlib.contextmanager
def backend_daemon(s, name, sock, argv):
    """A vhost-user back-end (qemu-storage-daemon, virtiofsd) running `argv`
    for the body: started on a fresh `sock` (waited for, 10 s at most), its
    stderr kept as NAME.stderr in the work dir, terminated after."""
    if os.path.exists(sock):
        os.remove(sock)
    with open(os.path.join(s.work, f"{name}.stderr"), "wb") as log:
        daemon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not unix_socket_listening(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield daemon
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def check_vhost_user_blk(s):
    """--disk vhost_user=: the disk is Debian's qemu-storage-daemon exporting
    an ext4 image over vhost-user (guest RAM shared by memfd); the guest
    mounts it, reads the host's file and writes its own, which the host
    finds (debugfs) in a file system e2fsck calls clean."""
    qsd = shutil.which("qemu-storage-daemon")
    if not qsd:
        s.tap.skip("vhost-user-blk", "no qemu-storage-daemon (apt-get install qemu-utils)")
        return
    image = os.path.join(s.work, "vub.img")
    ext4_image(image, 16, {"hello.txt": b"served by qemu-storage-daemon"})
    sock = os.path.join(s.work, "vub.sock")
    with backend_daemon(s, "vub-qsd", sock,
                        [qsd, "--blockdev", f"driver=file,node-name=disk0,filename={image}",
                         "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,"
                         f"addr.type=unix,addr.path={sock}"]):
        b = Boot(s, "vhost-user-blk", "vhost_user_blk", ["--disk", f"vhost_user={sock}"])
        s.expect_exit(b, 0, "powered off")
    s.no_failures(b)
    s.expect_fact(b, "vub-transport", "pci")
    s.expect_fact(b, "vub-content", "served by qemu-storage-daemon")
    s.expect_fact(b, "vub-umount", "ok")
    want = SEQ_50000_SHA256
    s.expect(b, "the guest's file, as it hashed it", b.fact("vub-sha256") == want,
             f"guest sha256 {b.fact('vub-sha256')}")
    fsck = subprocess.run(["e2fsck", "-fn", image], capture_output=True, text=True)
    s.expect(b, "e2fsck -fn finds the vhost-user disk's file system clean",
             fsck.returncode == 0, fsck.stdout[-500:])
    got = subprocess.run(["debugfs", "-R", "cat /from-l2.txt", image],
                         capture_output=True)
    s.expect(b, "the host reads the guest's file off the image qemu-storage-daemon served",
             hashlib.sha256(got.stdout).hexdigest() == want,
             got.stderr.decode(errors="replace")[-300:])
    os.remove(image)


VIRTIOFSD_PATHS = ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd",
                   "/usr/local/lib/vmm/virtiofsd")


def check_virtiofs(s):
    """--fs tag=,socket=: a host directory served by virtiofsd; the guest
    mounts it (mount -t virtiofs), reads the host's file and writes one the
    host then reads, byte for byte."""
    virtiofsd = next((p for p in VIRTIOFSD_PATHS if os.access(p, os.X_OK)), None)
    if not virtiofsd:
        s.tap.skip("virtiofs", "no virtiofsd (tools/setup provides one)")
        return
    share = os.path.join(s.work, "vfs-share")
    shutil.rmtree(share, ignore_errors=True)
    os.makedirs(share)
    with open(os.path.join(share, "hello.txt"), "w") as f:
        f.write("shared by virtiofsd")
    sock = os.path.join(s.work, "vfs.sock")
    with backend_daemon(s, "virtiofsd", sock, [virtiofsd, f"--socket-path={sock}", "-o",
                                               f"source={share}", "-o", "cache=none"]):
        b = Boot(s, "virtiofs", "virtiofs", ["--fs", f"tag=hostshare,socket={sock}"])
        s.expect_exit(b, 0, "powered off")
    s.no_failures(b)
    s.expect_fact(b, "vfs-content", "shared by virtiofsd")
    s.expect_fact(b, "vfs-listing", "from-l2.txt hello.txt ")
    s.expect_fact(b, "vfs-umount", "ok")
    want = SEQ_50000_SHA256
    s.expect(b, "the guest's file, as it hashed it", b.fact("vfs-sha256") == want,
             f"guest sha256 {b.fact('vfs-sha256')}")
    try:
        with open(os.path.join(share, "from-l2.txt"), "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        got = str(e)
    s.expect(b, "the host reads the guest's file in the shared directory", got == want, got)
    shutil.rmtree(share, ignore_errors=True)


def check_serial(s):
    """COM1 both ways through --serial pty: the kernel's log, a shell on
    ttyS0 running what the suite types, and 14 KiB of output arriving whole
    and in order while the suite stops reading for a while (the UART holds
    the guest back instead of dropping)."""
    b = Boot(s, "serial", "serial", serial="pty")
    try:
        s.expect(b, "vmm named its pty and the suite opened it", b.pty is not None, b.pty_error)
        shell = b.pty is not None and b.wait_for(r"l2: fact ttyS0-shell=ready")
        s.expect(b, "the guest's console output came through the pty",
                 "l2: running check serial" in b.console())
        if shell:
            # Stop reading as the numbers start, so the pty fills up.
            b.write_serial(b"echo serial-begin; seq 1 3000; echo serial-$((6*7)); "
                           b"touch /tmp/serial-done\n")
            b.wait_for(r"serial-begin\r?\n", timeout=60)
            b.reader_paused_until = time.monotonic() + 5
        got = b.wait_for(r"serial-42", timeout=120)
        s.expect(b, "ttyS0: a shell on the guest's COM1 ran our command (serial-42 came back)",
                 got is not None)
        text = b.console().replace("\r\n", "\n")
        numbers = "".join(f"{i}\n" for i in range(1, 3001))
        s.expect(b, "ttyS0: 3000 lines of seq output arrived whole and in order",
                 f"serial-begin\n{numbers}serial-42" in text)
    finally:
        s.expect_exit(b, 0, "powered off")
    s.expect_fact(b, "ttyS0-done", "yes")


def check_exits(s):
    """reboot with --on-reboot exit (0) and restart (boots again), panic
    through pvpanic (4), --timeout (124), --acpi off (MP table, a PCI disk,
    virtio-mmio slots announced on the command line)."""
    b = Boot(s, "reboot-exit", "reboot")
    s.expect_exit(b, 0, "rebooted, --on-reboot exit")
    s.expect(b, "booted once", len(b.facts().get("boot", [])) == 1)

    img = s.path("boots.img")
    raw_image(img, MiB)
    b = Boot(s, "reboot-restart", "restart",
             ["--on-reboot", "restart", "--disk", f"path={img},serial=boots"])
    s.expect_exit(b, 0, "powered off after the second boot")
    s.expect(b, "booted twice", b.facts().get("boot") == ["first", "second"],
             f"boot facts {b.facts().get('boot')}")
    s.expect(b, "vmm said it restarted the guest", "restart 1" in b.stderr())

    b = Boot(s, "panic", "panic")
    s.expect_exit(b, 4, "guest panic through pvpanic")
    s.expect_fact(b, "pvpanic", "1")
    s.expect(b, "the kernel panicked", "Kernel panic - not syncing" in b.console())

    # The guest must reach user space (and say it sleeps) before the timeout:
    # give it twice what the panic boot just took (boot to panic, under
    # whatever load the host has now: a fixed 40 s was once too short on a
    # busy host), at least 40 s.
    limit = max(40, math.ceil(2 * b.seconds))
    b = Boot(s, "timeout", "timeout", timeout=limit)
    s.expect_exit(b, 124, f"--timeout {limit}")
    s.expect_fact(b, "sleeping", "yes")

    # Debian's kernel cannot take virtio-mmio devices from the command line
    # (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is off), so the mmio device here
    # (an rng) only shows that vmm announces it; the disk is on PCI.
    img = s.path("acpi-off.img")
    raw_image(img, MiB, b"VMM-DISK-P\n")
    b = Boot(s, "acpi-off", "acpi_off",
             ["--acpi", "off", "--cpus", "2", "--disk", f"path={img},serial=pci",
              "--rng", "transport=mmio"])
    s.expect_exit(b, 0, "rebooted")
    s.no_failures(b)
    s.expect_fact(b, "acpi", "0")
    s.expect_fact(b, "cpus-online", "0-1")
    s.expect_fact(b, "disk-pci", "pci VMM-DISK-P")
    s.expect_fact(b, "cmdline", lambda v: v is not None and
                  "virtio_mmio.device=4K@0xd0000000:16" in v.split())


def check_shutdown(s):
    """SIGTERM to vmm presses the guest's ACPI power button (a Generic
    Event Device, as on hardware-reduced platforms): Linux's GED and button
    drivers turn it into KEY_POWER, the guest shuts down cleanly (its ext4
    disk unmounted) and powers off; vmm exits 0 well within its grace, and
    e2fsck finds the disk clean with the file written after the press."""
    img = s.path("shutdown.img")
    ext4_image(img, 16, {"hello.txt": b"before\n"})
    b = Boot(s, "shutdown", "shutdown",
             ["--disk", f"path={img},serial=shut", "--shutdown-grace", "120"], timeout=300)
    waiting = b.wait_for(r"l2: fact waiting=yes", timeout=200)
    s.expect(b, "the guest mounted its disk and waits for the power key", bool(waiting))
    s.expect_fact(b, "ged", "1")
    s.expect_fact(b, "power-button", "1")
    pressed = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    s.expect_exit(b, 0, "the guest powered off after the power button")
    s.tap.diag(f"shutdown: SIGTERM to vmm's exit {time.monotonic() - pressed:.1f} s")
    s.expect_fact(b, "clean-shutdown", "yes")
    s.expect(b, "vmm did not need the grace's hard stop", "shutdown grace" not in b.stderr())
    fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    s.expect(b, "e2fsck -fn finds the disk clean", fsck.returncode == 0, fsck.stdout + fsck.stderr)
    got = subprocess.run(["debugfs", "-R", "cat /after.txt", img],
                         capture_output=True, text=True).stdout
    s.expect(b, "the file written after the press is on the disk",
             got.startswith("written after the power button"), got)


def vmmctl(s, sock, *command):
    """vmmctl (built beside vmm) on the API socket: (exit code, JSON or None)."""
    ctl = os.path.join(os.path.dirname(s.vmm), "vmmctl")
    r = subprocess.run([ctl, sock, *command], capture_output=True, text=True, timeout=120)
    try:
        answer = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        answer = None
    return r.returncode, answer, r.stderr


def check_api(s):
    """The API socket (--api-socket) with Linux: vmmctl reads the VM's
    state and its disk's counters, pauses the running guest for 3 s and
    resumes it, then presses the power button through vm.shutdown: Linux
    shuts down cleanly and powers off (vmm exits 0), its ext4 disk clean
    under e2fsck. The same guest side as the shutdown check."""
    img = s.path("api.img")
    ext4_image(img, 16, {"hello.txt": b"before\n"})
    sock = s.path("api.sock")
    b = Boot(s, "api", "shutdown",
             ["--disk", f"path={img},serial=shut", "--shutdown-grace", "120",
              "--api-socket", sock], timeout=300)
    waiting = b.wait_for(r"l2: fact waiting=yes", timeout=200)
    s.expect(b, "the guest mounted its disk and waits for the power key", bool(waiting))
    code, info, err = vmmctl(s, sock, "info")
    s.expect(b, "vmmctl info answers", code == 0 and info is not None, err)
    info = info or {}
    s.expect(b, "vm.info: running", info.get("state") == "running", str(info))
    disks = [d for d in info.get("devices", []) if d.get("kind") == "virtio-blk"]
    s.expect(b, "vm.info: the disk, set up by Linux's driver",
             len(disks) == 1 and disks[0].get("active") is True, str(info.get("devices")))
    code, counters, err = vmmctl(s, sock, "counters")
    blk = [d for d in (counters or {}).get("devices", []) if d.get("kind") == "virtio-blk"]
    requests = blk[0]["counters"].get("requests", 0) if blk else 0
    s.expect(b, "vm.counters: the disk served Linux's requests", code == 0 and requests > 0,
             str(counters) + err)
    code, _, err = vmmctl(s, sock, "pause")
    s.expect(b, "vmmctl pause", code == 0, err)
    time.sleep(3)
    code, info, err = vmmctl(s, sock, "info")
    info = info or {}
    s.expect(b, "vm.info: paused, for at least the 3 s slept",
             info.get("state") == "paused" and info.get("paused_seconds", 0) >= 3, str(info))
    code, _, err = vmmctl(s, sock, "resume")
    s.expect(b, "vmmctl resume", code == 0, err)
    pressed = time.monotonic()
    code, _, err = vmmctl(s, sock, "shutdown")
    s.expect(b, "vmmctl shutdown", code == 0, err)
    s.expect_exit(b, 0, "the guest powered off after vm.shutdown's power button")
    s.tap.diag(f"api: vm.shutdown to vmm's exit {time.monotonic() - pressed:.1f} s")
    s.expect_fact(b, "clean-shutdown", "yes")
    s.expect(b, "the API socket is removed at exit", not os.path.exists(sock))
    fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    s.expect(b, "e2fsck -fn finds the disk clean", fsck.returncode == 0, fsck.stdout + fsck.stderr)


def check_snapshot(s):
    """Snapshot and restore (issue 15) with Linux: a booted guest with an
    ext4 disk, a tap and a shell on COM1 is paused, snapshotted through the
    API socket and stopped; a new vmm restores it from the snapshot (no
    kernel given: its memory holds the guest) and the same guest goes on --
    its shell answers over the console, it pings its peer on the tap, writes
    to the disk it had mounted, unmounts it and powers off; e2fsck finds the
    disk clean and the host reads what was written before and after."""
    img = s.path("snapshot.img")
    ext4_image(img, 16, {"hello.txt": b"before\n"})
    snap = s.path("snapshot.d")
    shutil.rmtree(snap, ignore_errors=True)
    tap = "vmmtap1"
    subprocess.run(["ip", "link", "del", tap], capture_output=True)
    ip("tuntap", "add", "dev", tap, "mode", "tap")
    try:
        ip("addr", "add", "10.0.2.1/24", "dev", tap)
        ip("link", "set", tap, "up")
        args = ["--disk", f"path={img},serial=snap", "--net", f"tap={tap}", "--memory", "256M"]
        sock = s.path("snapshot.sock")
        b = Boot(s, "snapshot", "snapshot", args + ["--api-socket", sock], serial="pty",
                 timeout=300)
        ready = b.wait_for(r"l2: fact snapshot-ready=yes", timeout=200)
        s.expect(b, "the guest mounted its disk, pinged its peer and started a shell",
                 bool(ready))
        s.expect_fact(b, "ping-before", "ok")
        code, _, err = vmmctl(s, sock, "pause")
        s.expect(b, "vmmctl pause", code == 0, err)
        t0 = time.monotonic()
        code, _, err = vmmctl(s, sock, "snapshot", snap)
        s.expect(b, "vmmctl snapshot writes the snapshot", code == 0, err)
        s.tap.diag(f"snapshot: written in {time.monotonic() - t0:.2f} s, "
                   f"memory file {os.stat(os.path.join(snap, 'memory')).st_blocks * 512 >> 20} MiB "
                   f"on disk" if code == 0 else "snapshot: not written")
        code, _, err = vmmctl(s, sock, "stop")
        s.expect_exit(b, 130, "stopped through the API after the snapshot")
        # Only what the restore needs: the same memory and devices, no kernel.
        r = Boot(s, "snapshot-restored", "snapshot", args, serial="pty", timeout=300,
                 restore=snap)
        try:
            s.expect(r, "vmm restored the VM and opened its pty", r.pty is not None, r.pty_error)
            if r.pty is not None:
                r.write_serial(b"echo restored-$((6*7))\n")
            s.expect(r, "the restored guest's shell answers over the console",
                     r.wait_for(r"restored-42", timeout=120) is not None)
            if r.pty is not None:
                r.write_serial(b"ping -c 3 -W 5 10.0.2.1 > /dev/null && echo ping-after-ok; "
                               b"echo after > /mnt/after.txt && sync && echo wrote-after; "
                               b"touch /tmp/snapshot-done\n")
            s.expect(r, "the restored guest pings its peer on the tap",
                     r.wait_for(r"ping-after-ok", timeout=120) is not None)
            s.expect(r, "the restored guest writes to the disk it had mounted",
                     r.wait_for(r"wrote-after", timeout=120) is not None)
        finally:
            s.expect_exit(r, 0, "the restored guest powered off")
        s.expect_fact(r, "snapshot-umount", "ok")
        s.expect(r, "the restored guest did not boot again",
                 "l2: running check snapshot" not in r.console())
        fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
        s.expect(r, "e2fsck -fn finds the disk clean", fsck.returncode == 0,
                 fsck.stdout + fsck.stderr)
        for name, want in (("before.txt", "written before the snapshot"), ("after.txt", "after")):
            got = subprocess.run(["debugfs", "-R", f"cat /{name}", img],
                                 capture_output=True, text=True).stdout.strip()
            s.expect(r, f"the host reads /{name} from the disk", got == want, repr(got))
    finally:
        subprocess.run(["ip", "link", "del", tap], capture_output=True)


def host_root(s, args, cwd, stdin=b"", timeout=180):
    """vmm --host-root (L1's own root: Debian 12) with `args` (flags, then
    -- and the command): (exit status, stdout bytes, stderr text, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([s.vmm, "--kernel", s.kernel, "--memory", "512M", "--timeout",
                        str(timeout), "--host-root", *args], cwd=cwd, input=stdin,
                       capture_output=True, timeout=timeout + 60)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace"), time.monotonic() - t0


def check_host_root(s):
    """vmm --host-root (issue 19): Debian's kernel boots on L1's own root
    file system and runs one command, exiting with its status: it sees the
    host's files (/etc/debian_version) and working directory, its writes to a
    --rw directory reach the host and its writes elsewhere do not, its stdin
    and stdout are vmm's (a pipe passes bytes as they are), --user runs it
    as that user, a missing command is 127, and a bad flag is one line."""
    virtiofsd = next((p for p in VIRTIOFSD_PATHS if os.access(p, os.X_OK)), None)
    if not virtiofsd:
        s.tap.skip("host-root", "no virtiofsd (tools/setup provides one)")
        return
    release = os.listdir(os.path.join(s.linux_dir, "lib", "modules"))[0]
    share = os.path.join(s.work, "host-root-rw")
    shutil.rmtree(share, ignore_errors=True)
    os.makedirs(share)
    probe = "/root/vmm-host-root-probe"
    if os.path.exists(probe):
        os.remove(probe)

    def expect(name, ok, result):
        code, out, err, seconds = result
        return s.tap.check(f"host-root: {name}", ok,
                           f"exit {code} in {seconds:.1f} s; stdout {out[-600:]!r}; stderr {err[-600:]}")

    r = host_root(s, ["--", "sh", "-c", "uname -r; test -f /etc/debian_version; pwd; exit 7"],
                  cwd=share)
    expect("the command's status is vmm's (exit 7)", r[0] == 7, r)
    expect("it ran in the guest's kernel, on the host's files, in the host's directory",
           r[1] == f"{release}\n{share}\n".encode(), r)
    s.tap.diag(f"host-root: `sh -c ...; exit 7` took {r[3]:.1f} s exec to exit")
    r = host_root(s, ["--rw", share, "--", "sh", "-c",
                      f"echo from-the-guest > {share}/out.txt && echo elsewhere > {probe} && "
                      f"cat {probe}"], cwd="/")
    expect("a write elsewhere works inside the guest (the overlay)",
           r[0] == 0 and r[1] == b"elsewhere\n", r)
    try:
        with open(os.path.join(share, "out.txt")) as f:
            got = f.read()
    except OSError as e:
        got = str(e)
    expect("a write to the --rw directory reaches the host", got == "from-the-guest\n", r)
    expect("a write elsewhere does not reach the host", not os.path.exists(probe), r)
    r = host_root(s, ["--", "head", "-n", "2"], cwd=share, stdin=b"one\ntwo\nthree\n")
    expect("input piped before the guest has booted reaches the command (MULTIPORT)",
           r[0] == 0 and r[1] == b"one\ntwo\n", r)
    r = host_root(s, ["--", "sh", "-c", "cat; echo end"], cwd=share, stdin=b"a\nb")
    expect("the end of vmm's stdin is the end of the command's (cat returns)",
           r[0] == 0 and r[1] == b"a\nbend\n", r)
    # And input written once the command runs.
    t0 = time.monotonic()
    p = subprocess.Popen([s.vmm, "--kernel", s.kernel, "--memory", "512M", "--timeout", "180",
                          "--host-root", "--", "sh", "-c", "echo ready; head -n 2"], cwd=share,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    if first == b"ready\n":
        p.stdin.write(b"one\ntwo\nthree\n")
        p.stdin.flush()
    try:
        out, err = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    r = (p.returncode, first + out, err.decode(errors="replace"), time.monotonic() - t0)
    expect("a pipe on stdin and stdout passes bytes as they are (no echo, no CR)",
           r[0] == 0 and r[1] == b"ready\none\ntwo\n", r)
    r = host_root(s, ["--user", "nobody", "--", "id", "-u"], cwd=share)
    expect("--user runs the command as that user", r[0] == 0 and r[1] == b"65534\n", r)
    r = host_root(s, ["--", "no-such-command-here"], cwd=share)
    expect("a command the guest cannot find exits 127, saying so",
           r[0] == 127 and b"no-such-command-here" in r[1], r)
    r = host_root(s, ["--rw", "/no/such/dir", "--", "true"], cwd=share)
    expect("a --rw directory that does not exist is one line, exit 2",
           r[0] == 2 and r[2].count("\n") == 1 and "/no/such/dir" in r[2], r)
    shutil.rmtree(share, ignore_errors=True)


def check_distro(s):
    """A real distribution: Debian 12 minbase with systemd (the image
    tests/linux/debian-root makes) boots from its disk, through the
    initramfs's switch_root as distributions do, to systemd's multi-user
    target with no failed unit, and powers off cleanly: e2fsck finds the
    file system clean and the host reads what the guest wrote."""
    if not os.path.exists(s.debian_root):
        s.tap.skip("distro", f"no Debian root image at {s.debian_root} "
                             "(tests/linux/debian-root makes it; tools/run-tests runs that)")
        return
    if stat.S_ISBLK(os.stat(s.debian_root).st_mode):
        img = s.debian_root  # a copy-on-write disk of L1's: changes vanish with L1
    else:
        img = s.path("debian12-root.img")
        t0 = time.monotonic()
        subprocess.run(["cp", "--sparse=always", s.debian_root, img], check=True)
        s.tap.diag(f"distro: image copied in {time.monotonic() - t0:.1f} s")
    b = Boot(s, "distro", "distro", ["--cpus", "2", "--memory", "1G", "--disk", f"path={img}"],
             cmdline="root=/dev/vda rootinit=/sbin/init", timeout=300)
    s.expect_exit(b, 0, "systemd powered off")
    s.expect_fact(b, "pid1", "/usr/lib/systemd/systemd")
    s.expect_fact(b, "os", "bookworm")
    s.expect_fact(b, "multi-user", "active")
    s.expect_fact(b, "failed-units", "")
    s.expect_fact(b, "modules-dir", lambda v: bool(v and v.startswith("/lib/modules/")))
    s.expect(b, "the kernel powered down at systemd's request", "reboot: Power down" in b.console())
    s.expect(b, "systemd found the kernel's modules (no 'Failed to find module')",
             "Failed to find module" not in b.console())
    s.tap.diag(f"distro: multi-user.target reached at {b.fact('uptime')} s of L2 uptime "
               f"(the initramfs handed over to systemd at {b.fact('switch-root-at')} s); vmm ran {b.seconds:.1f} s")
    fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    s.expect(b, "e2fsck -fn finds the root file system clean", fsck.returncode == 0,
             fsck.stdout + fsck.stderr)
    got = subprocess.run(["debugfs", "-R", "cat /var/lib/vmm-check", img],
                         capture_output=True, text=True).stdout
    s.expect(b, "the host reads the file the booted system wrote",
             got.startswith("written by systemd's multi-user boot"), got)
    if img != s.debian_root:
        os.remove(img)


CHECKS = {
    "smp": check_smp,
    "disks": check_disks,
    "discard": check_discard,
    "flush": check_flush,
    "net": check_net,
    "net-vhost": check_net_vhost,
    "devices": check_devices,
    "vsock-vhost": check_vsock_vhost,
    "vhost-user-blk": check_vhost_user_blk,
    "virtiofs": check_virtiofs,
    "serial": check_serial,
    "exits": check_exits,
    "shutdown": check_shutdown,
    "api": check_api,
    "snapshot": check_snapshot,
    "host-root": check_host_root,
    "distro": check_distro,
}
# Run only when --only names them: peers for benchmarks, not tests.
PEER_CHECKS = {
    "net-qemu": check_net_qemu,
}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmm", required=True)
    parser.add_argument("--l2tool", required=True)
    parser.add_argument("--linux-dir", default=os.path.join(HERE, "..", "..", "build", "linux"))
    parser.add_argument("--work-dir", default="/var/tmp/vmm-linux-suite",
                        help="images and consoles (a file system with holes and O_DIRECT)")
    parser.add_argument("--debian-root", help="the distro check's image (default: "
                        "LINUX_DIR/debian12-root.img, made by tests/linux/debian-root)")
    parser.add_argument("--log-dir", help="copy each boot's console and vmm's stderr here")
    parser.add_argument("--only", default="", help="comma-separated checks")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, fn in {**CHECKS, **PEER_CHECKS}.items():
            print(f"{name}: {' '.join(fn.__doc__.split())}")
        return 0
    if os.path.exists("/sys/module/kvm_pvm") or not os.path.exists("/dev/kvm"):
        print("1..0 # SKIP no hardware-virtualization KVM here (run it in the nested lane: "
              "tests/nested/l1)")
        return 0
    if not shutil.which("busybox"):
        print("1..0 # SKIP no busybox (Debian: busybox-static)")
        return 0
    wanted = [c for c in args.only.split(",") if c] or list(CHECKS)
    checks = {**CHECKS, **PEER_CHECKS}
    unknown = [c for c in wanted if c not in checks]
    if unknown:
        print(f"suite.py: unknown check {unknown[0]!r} (--list names them)", file=sys.stderr)
        return 2
    suite = Suite(args)
    start = time.monotonic()
    for name in wanted:
        t0 = time.monotonic()
        try:
            checks[name](suite)
        except Exception as e:  # a broken check is a failure, not a crash of the suite
            suite.tap.check(f"{name}: ran to the end", False, f"{type(e).__name__}: {e}")
        suite.tap.diag(f"{name}: {time.monotonic() - t0:.1f} s")
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
        for f in os.listdir(args.work_dir):
            if f.endswith((".console", ".stderr")):
                shutil.copy(os.path.join(args.work_dir, f), args.log_dir)
    print(f"1..{suite.tap.count}")
    suite.tap.diag(f"{suite.tap.count - suite.tap.failed} of {suite.tap.count} passed "
                   f"in {time.monotonic() - start:.1f} s")
    return 1 if suite.tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
