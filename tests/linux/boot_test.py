#!/usr/bin/env python3
"""One Linux boot under vmm: Debian's stock kernel with the suite's initramfs.

  --mode disks: two virtio-blk disks, one over PCI and one over virtio-mmio
    (found through ACPI), 2 vCPUs. Passes when vmm exits 0 (the guest
    powered off), the kernel brought up both CPUs, init read the host's
    pattern from each disk over the expected transport, and the host finds
    init's answer in each image.
  --mode panic: init crashes the kernel; passes when vmm exits 4 (pvpanic).

The console goes to <work-dir>/serial-<mode>.log; the same lines, stamped
with the host's elapsed seconds, go to stdout (meson's test log) as they
arrive, so a run that times out still shows how far the boot got.
Exits 77 (meson's "skipped") without /dev/kvm or without the kernel.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import disk_pattern  # noqa: E402

# What the suite adds on PVM hosts (vmm itself adds the switches for the
# instructions the emulator cannot run): under the emulator (~1.6 M
# instructions/s) two boot-time self-checks take most of an hour, so their
# initcalls are skipped. BTF: the first register_btf_kfunc_id_set() parses
# and verifies all of vmlinux's BTF (tens of minutes; seen under
# cubictcp_register); the four built-in initcalls that call it in 6.1 are
# listed. ftrace: the weak-function check over ~40 k records (~2-5 min).
# tracefs: tracer_init_tracefs queues the trace-event "eval map" update
# (every event's print format against every enum map), which held
# event_mutex for 20+ min of guest time in run 6 while init_kprobe_trace
# waited; without tracefs neither runs.
# Without the stall detectors the console stays readable: their NMI
# backtraces are noise at this speed. tests/linux/BOOT_LOG.md has the runs.
PVM_SUITE_CMDLINE = (
    "initcall_blacklist=cubictcp_register,bpf_tcp_ca_kfunc_init,"
    "bpf_prog_test_run_init,bpf_key_sig_kfuncs_init,ftrace_check_for_weak_functions,"
    "tracer_init_tracefs "
    "nowatchdog rcupdate.rcu_cpu_stall_suppress=1")
SKIP = 77


def skip(reason):
    print(f"SKIPPED: {reason}")
    sys.exit(SKIP)


def kvm_available():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def run_vmm(cmd, serial_log, timeout):
    """Runs vmm, echoing the console with host timestamps; returns its exit
    status and the console text."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    seen = 0
    pending = b""

    def drain():
        nonlocal seen, pending
        try:
            with open(serial_log, "rb") as f:
                f.seek(seen)
                chunk = f.read()
        except FileNotFoundError:
            return
        seen += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace").rstrip("\r")
            print(f"[host {time.monotonic() - start:7.1f}s] {text}", flush=True)

    while True:
        try:
            status = proc.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            drain()
            if time.monotonic() - start > timeout + 60:  # vmm ignored --timeout
                proc.kill()
    drain()
    if pending:
        print(f"[host {time.monotonic() - start:7.1f}s] {pending.decode(errors='replace')}")
    print(f"vmm exited with {status} after {time.monotonic() - start:.1f} s", flush=True)
    with open(serial_log, "rb") as f:
        return status, f.read().decode(errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vmm", required=True)
    parser.add_argument("--linux-dir", required=True,
                        help="where tests/linux/fetch-kernel put vmlinuz and modules/")
    parser.add_argument("--init", required=True, help="the built init binary")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--mode", choices=("disks", "panic"), default="disks")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800,
                        help="vmm --timeout, seconds")
    parser.add_argument("--extra-cmdline", default="")
    args = parser.parse_args()

    if not kvm_available():
        skip("/dev/kvm is not available")
    kernel = os.path.join(args.linux_dir, "vmlinuz")
    modules = os.path.join(args.linux_dir, "modules")
    if not (os.path.exists(kernel) and os.path.exists(os.path.join(modules, "load-order"))):
        skip(f"no Debian kernel and modules in {args.linux_dir} (run tests/linux/fetch-kernel)")

    os.makedirs(args.work_dir, exist_ok=True)
    prefix = os.path.join(args.work_dir, args.mode)
    initramfs = prefix + "-initramfs.cpio"
    subprocess.run([sys.executable, os.path.join(HERE, "build-initramfs"),
                    "--init", args.init, "--modules", modules,
                    "--output", initramfs], check=True)
    serial_log = os.path.join(args.work_dir, f"serial-{args.mode}.log")
    if os.path.exists(serial_log):
        os.remove(serial_log)  # vmm appends

    # On PVM hosts vmm adds the switches the emulator needs (noxsave, ...)
    # itself and says so; the suite checks that it did.
    cmdline = f"console=ttyS0 earlyprintk=serial linux_test={args.mode}"
    if os.path.exists("/sys/module/kvm_pvm"):
        cmdline += " " + PVM_SUITE_CMDLINE
    if args.extra_cmdline:
        cmdline += " " + args.extra_cmdline
    cmd = [args.vmm, "--kernel", kernel, "--initrd", initramfs,
           "--cpus", str(args.cpus), "--memory", "512M",
           "--cmdline", cmdline, "--serial", f"file={serial_log}",
           "--timeout", str(args.timeout), "--stats"]
    disks = {}
    if args.mode == "disks":
        # letter -> transport; init finds each disk by the letter in its header.
        for letter, transport in (("A", "pci"), ("B", "mmio")):
            image = f"{prefix}-{letter}.img"
            disk_pattern.make_image(image, letter)
            disks[letter] = (image, transport)
            cmd += ["--disk", f"path={image},transport={transport}"]
    print("running:", " ".join(cmd), flush=True)
    status, console = run_vmm(cmd, serial_log, args.timeout)

    problems = []
    if args.mode == "panic":
        if status != 4:
            problems.append(f"vmm exited {status}, expected 4 (pvpanic)")
        for needle in ("linux-init: pvpanic bound", "Kernel panic - not syncing"):
            if needle not in console:
                problems.append(f"the console lacks {needle!r}")
    else:
        if status != 0:
            problems.append(f"vmm exited {status}, expected 0 (powered off)")
        expected = [
            rf"smp: Brought up 1 node, {args.cpus} CPUs",
            r"linux-init: vd[a-z] over pci: disk A read, pattern ok",
            r"linux-init: vd[a-z] over mmio: disk B read, pattern ok",
            rf"linux-init: cpus online 0-{args.cpus - 1}\b",
            r"linux-init: all checks passed",
        ]
        for pattern in expected:
            if not re.search(pattern, console):
                problems.append(f"the console lacks /{pattern}/")
        if console.count("wrote the answer, fsync ok") != 2:
            problems.append("init did not write and fsync both disks")
        for letter, (image, transport) in disks.items():
            problems += disk_pattern.check_image(image, letter, transport)
    for line in console.splitlines():
        if "linux-init: FAIL" in line:
            problems.append(line.strip())
    for problem in problems:
        print("FAILED:", problem)
    if problems:
        print(f"(full console: {serial_log})")
        return 1
    print(f"PASSED: linux boot ({args.mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
