"""What the Linux test lanes need to put a kernel's user space together:

- `Cpio`: an uncompressed newc archive (what the kernel unpacks as an
  initramfs), built in memory from files, directories, device nodes and
  symlinks.
- `ModuleTree`: a kernel's module tree (lib/modules/<version>/ as
  tests/linux/fetch-kernel keeps it), its dependencies read from each
  module's .modinfo "depends=" (no kmod needed), so that a list of wanted
  modules becomes the files to load, dependencies first. `write_modules_dep`
  writes the tree's modules.dep for busybox's or kmod's modprobe.

Used by tests/nested/l1 (the L1 initramfs), tests/linux/suite.py (the L2
initramfs and root disks) and tests/linux/pvm/build-initramfs.
"""
import os
import tempfile
import stat
import struct


class Cpio:
    """A newc archive; entries keep the order they were added in."""

    def __init__(self):
        self._entries = []
        self._names = set()

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        if name in self._names:
            raise ValueError(f"initramfs: {name} added twice")
        self._names.add(name)
        self._entries.append((name, mode, data, rdev))

    def dir(self, name, mode=0o755):
        """Adds a directory and any missing parents."""
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if path not in self._names:
                self._add(path, stat.S_IFDIR | mode)

    def _parent(self, name):
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)

    def file(self, name, data, mode=0o644):
        self._parent(name)
        self._add(name, stat.S_IFREG | mode, data)

    def copy(self, name, host_path, mode=None):
        with open(host_path, "rb") as f:
            data = f.read()
        if mode is None:
            mode = os.stat(host_path).st_mode & 0o777
        self.file(name, data, mode)

    def chardev(self, name, major, minor, mode=0o600):
        self._parent(name)
        self._add(name, stat.S_IFCHR | mode, b"", (major, minor))

    def symlink(self, name, target):
        self._parent(name)
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    @staticmethod
    def _entry(ino, name, mode, data=b"", rdev=(0, 0)):
        name_bytes = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name_bytes), 0]
        out = b"070701" + b"".join(b"%08X" % f for f in fields) + name_bytes
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
        return out

    def bytes(self):
        parts = [self._entry(ino, *entry) for ino, entry in enumerate(self._entries, 1)]
        parts.append(self._entry(0, "TRAILER!!!", 0))
        blob = b"".join(parts)
        return blob + b"\0" * (-len(blob) % 512)

    def write(self, path):
        """Writes the archive to path atomically. The temporary file has a name of
        its own (tests running side by side may write the same cached archive)."""
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".",
                                   prefix=os.path.basename(path) + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.bytes())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
            raise


def _modinfo_depends(path):
    """The "depends=" list of a kernel module (an ELF64 relocatable) from its
    .modinfo section; [] when it names none."""
    with open(path, "rb") as f:
        elf = f.read()
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise ValueError(f"{path}: not an ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i):
        _, _, _, _, off, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return off, size

    name_table_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, = struct.unpack_from("<I", elf, shoff + i * shentsize)
        start = name_table_off + name_off
        if elf[start:elf.index(b"\0", start)] == b".modinfo":
            off, size = section(i)
            for field in elf[off:off + size].split(b"\0"):
                if field.startswith(b"depends="):
                    return [d for d in field[8:].decode().split(",") if d]
            return []
    return []


def module_name(filename):
    """The module's name as the kernel knows it ("kvm-amd.ko" -> "kvm_amd")."""
    return os.path.basename(filename).split(".ko")[0].replace("-", "_")


class ModuleTree:
    """lib/modules/<version>/ of one kernel."""

    def __init__(self, root):
        self.root = root
        self.version = os.path.basename(os.path.normpath(root))
        self._paths = None  # module name -> path relative to root
        self._depends = {}

    @staticmethod
    def find(linux_dir):
        """The module tree tests/linux/fetch-kernel keeps under LINUX_DIR, or None."""
        base = os.path.join(linux_dir, "lib", "modules")
        try:
            versions = sorted(os.listdir(base))
        except FileNotFoundError:
            return None
        return ModuleTree(os.path.join(base, versions[-1])) if versions else None

    def _index(self):
        if self._paths is None:
            self._paths = {}
            dep_file = os.path.join(self.root, "modules.dep")
            if os.path.exists(dep_file):
                with open(dep_file) as f:
                    for line in f:
                        rel, deps = line.split(":", 1)
                        name = module_name(rel)
                        self._paths[name] = rel
                        self._depends[name] = [module_name(d) for d in deps.split()]
            else:
                for dirpath, _, files in os.walk(os.path.join(self.root, "kernel")):
                    for filename in files:
                        if filename.endswith(".ko"):
                            rel = os.path.relpath(os.path.join(dirpath, filename), self.root)
                            self._paths[module_name(filename)] = rel
        return self._paths

    def has(self, name):
        return module_name(name) in self._index()

    def path(self, name):
        rel = self._index().get(module_name(name))
        if rel is None:
            raise KeyError(f"module {name} is not in {self.root}")
        return rel

    def depends(self, name):
        name = module_name(name)
        if name not in self._depends:
            self._depends[name] = [module_name(d) for d in
                                   _modinfo_depends(os.path.join(self.root, self.path(name)))]
        return self._depends[name]

    def load_order(self, wanted):
        """Relative paths of `wanted` and everything they depend on,
        dependencies first, each once."""
        order, placed = [], set()

        def place(name):
            name = module_name(name)
            if name in placed:
                return
            placed.add(name)
            for dep in self.depends(name):
                place(dep)
            order.append(self.path(name))

        for name in wanted:
            place(name)
        return order

    def write_modules_dep(self):
        """Writes modules.dep (kmod's text format: every module with its whole
        dependency closure, paths relative to the tree)."""
        paths = self._index()
        lines = []
        for name in sorted(paths):
            closure = self.load_order([name])[:-1]
            lines.append(f"{paths[name]}: {' '.join(reversed(closure))}".rstrip() + "\n")
        tmp = os.path.join(self.root, "modules.dep.tmp")
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, os.path.join(self.root, "modules.dep"))

    def add_to(self, cpio, wanted, dest="lib/modules"):
        """Puts `wanted` (with dependencies) into `cpio` as DEST/<name>.ko and
        writes DEST/load-order; returns the load order (module names)."""
        names = []
        for rel in self.load_order(wanted):
            name = module_name(rel)
            cpio.copy(f"{dest}/{name}.ko", os.path.join(self.root, rel), 0o644)
            names.append(name)
        cpio.file(f"{dest}/load-order", ("\n".join(names) + "\n").encode())
        return names
