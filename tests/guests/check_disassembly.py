#!/usr/bin/env python3
"""Fails when a test guest contains instructions this platform's KVM
instruction emulator cannot execute (see shared/PLATFORM.md).

Each executable section is decoded in its CPU mode: .text16 as 16-bit,
.text32 as 32-bit, everything else as 64-bit. Undecodable bytes ("(bad)")
also fail: they mean data in code or a wrong mode, which could hide a
forbidden instruction.
"""
import argparse
import re
import subprocess
import sys

# Registers: SSE/AVX/AVX-512, MMX and x87 state.
FORBIDDEN_REGISTERS = re.compile(r"%(?:[xyz]mm\d+|mm\d|st\b|st\(\d\)|k[0-7]\b)")
FORBIDDEN_MNEMONICS = re.compile(
    r"^(?:xsave\w*|xrstor\w*|fxsave\w*|fxrstor\w*|cmpxchg16b|popcnt|int3|"
    r"clac|stac|fwait|wait|v?ldmxcsr|v?stmxcsr|rdrand|rdseed|movbe)$")
# objdump -d --no-show-raw-insn line: "  100000:\tcli"
INSN_LINE = re.compile(r"^\s*[0-9a-f]+:\t(.*)$")
SECTION_MODES = {".text16": "i8086", ".text32": "i386"}


def executable_sections(objdump, elf):
    out = subprocess.run([objdump, "-h", elf], check=True, capture_output=True,
                         text=True).stdout
    sections = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) >= 7 and fields[0].isdigit() and i + 1 < len(lines):
            if "CODE" in lines[i + 1]:
                sections.append(fields[1])
    return sections


def data_ranges(objdump, elf):
    """[start, end) of the sized data objects (.type @object) per section:
    data placed inside code, which is not decoded."""
    out = subprocess.run([objdump, "-t", elf], check=True, capture_output=True,
                         text=True).stdout
    ranges = {}
    for line in out.splitlines():
        fields = line.split()
        # address, flags..., section, size, name; "O" marks an object.
        if len(fields) < 5 or "O" not in fields[1:-3]:
            continue
        try:
            start, size = int(fields[0], 16), int(fields[-2], 16)
        except ValueError:
            continue
        ranges.setdefault(fields[-3], []).append((start, start + size))
    return ranges


def check(objdump, elf):
    problems = []
    skip = data_ranges(objdump, elf)
    sections = executable_sections(objdump, elf)
    if not sections:
        problems.append(f"{elf}: no executable sections found")
    for section in sections:
        cmd = [objdump, "-d", "--no-show-raw-insn", "-j", section, elf]
        mode = SECTION_MODES.get(section)
        if mode:
            cmd += ["-M", mode]
        out = subprocess.run(cmd, check=True, capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            match = INSN_LINE.match(line)
            if not match:
                continue
            address = int(line.split(":")[0], 16)
            if any(lo <= address < hi for lo, hi in skip.get(section, [])):
                continue
            insn = match.group(1).strip()
            words = insn.split()
            # Skip prefixes such as "lock" and "rep" to find the mnemonic.
            while words and words[0] in ("lock", "rep", "repz", "repnz",
                                         "repe", "repne", "data16", "addr32",
                                         "cs", "ds", "es", "fs", "gs", "ss"):
                words = words[1:]
            mnemonic = words[0] if words else ""
            if ("(bad)" in insn or FORBIDDEN_MNEMONICS.match(mnemonic)
                    or FORBIDDEN_REGISTERS.search(insn)):
                problems.append(f"{elf} [{section}]: {line.strip()}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objdump", default="objdump")
    parser.add_argument("elves", nargs="+")
    args = parser.parse_args()
    problems = []
    for elf in args.elves:
        problems += check(args.objdump, elf)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} instruction(s) the KVM emulator cannot run")
        return 1
    print(f"checked {len(args.elves)} guest(s): no forbidden instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
