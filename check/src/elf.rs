//! Just enough ELF to tell whether the helper can run inside Postfix's
//! chroot: a static executable has no `PT_INTERP` program header (no
//! dynamic loader to find in the chroot). Pure: works on the first bytes
//! of the file.

/// How many bytes of a file [`inspect`] may need (header and program
/// headers of any sane executable).
pub const READ_LIMIT: usize = 64 * 1024;

const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

/// What kind of file it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // `Elf::NotElf` says it best
pub enum Elf {
    /// Not an ELF file at all (a script, say).
    NotElf,
    /// ELF, but not an executable (object file, core dump) or truncated.
    Unusable(&'static str),
    /// An executable without a program interpreter: runs anywhere,
    /// including an empty chroot. `pie`: a static-pie (ET_DYN).
    Static { machine: u16, pie: bool },
    /// Needs the dynamic loader `interpreter` (and shared libraries).
    Dynamic { machine: u16, interpreter: String },
}

/// `e_machine` of the architecture this program was built for, if known.
pub fn host_machine() -> Option<u16> {
    Some(match std::env::consts::ARCH {
        "x86" => 3,
        "arm" => 40,
        "x86_64" => 62,
        "aarch64" => 183,
        "riscv64" => 243,
        "powerpc64" => 21,
        "s390x" => 22,
        _ => return None,
    })
}

fn u16_at(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn u64_at(b: &[u8], off: usize, le: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(s)
    } else {
        u64::from_be_bytes(s)
    })
}

/// Classify the file whose first bytes are `b` (up to [`READ_LIMIT`]).
pub fn inspect(b: &[u8]) -> Elf {
    if b.get(..4) != Some(b"\x7fELF") {
        return Elf::NotElf;
    }
    let truncated = Elf::Unusable("truncated ELF header");
    let (wide, le) = match (b.get(4), b.get(5)) {
        (Some(1), Some(1)) => (false, true),
        (Some(1), Some(2)) => (false, false),
        (Some(2), Some(1)) => (true, true),
        (Some(2), Some(2)) => (true, false),
        (Some(_), Some(_)) => return Elf::Unusable("unknown ELF class or byte order"),
        _ => return truncated,
    };
    let Some(e_type) = u16_at(b, 16, le) else {
        return truncated;
    };
    let Some(machine) = u16_at(b, 18, le) else {
        return truncated;
    };
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Elf::Unusable("not an executable (ELF type is neither EXEC nor DYN)");
    }
    // e_phoff, e_phentsize, e_phnum.
    let header = if wide {
        (u64_at(b, 32, le), u16_at(b, 54, le), u16_at(b, 56, le))
    } else {
        (
            u32_at(b, 28, le).map(u64::from),
            u16_at(b, 42, le),
            u16_at(b, 44, le),
        )
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = header else {
        return truncated;
    };
    let min_entry = if wide { 56 } else { 32 };
    if usize::from(phentsize) < min_entry || phnum == 0 {
        return Elf::Unusable("no program headers");
    }
    let Ok(phoff) = usize::try_from(phoff) else {
        return Elf::Unusable("program headers out of range");
    };
    let table_end = phoff.saturating_add(usize::from(phnum) * usize::from(phentsize));
    if table_end > b.len() {
        return Elf::Unusable("program headers beyond the part read");
    }
    for i in 0..usize::from(phnum) {
        let at = phoff + i * usize::from(phentsize);
        let Some(p_type) = u32_at(b, at, le) else {
            return Elf::Unusable("program headers beyond the part read");
        };
        if p_type == PT_INTERP {
            let (off, size) = if wide {
                (u64_at(b, at + 8, le), u64_at(b, at + 32, le))
            } else {
                (
                    u32_at(b, at + 4, le).map(u64::from),
                    u32_at(b, at + 16, le).map(u64::from),
                )
            };
            let interpreter = match (off, size) {
                (Some(o), Some(s)) => usize::try_from(o)
                    .ok()
                    .zip(usize::try_from(s).ok())
                    .and_then(|(o, s)| b.get(o..o.saturating_add(s)))
                    .map(|raw| {
                        String::from_utf8_lossy(raw)
                            .trim_end_matches('\0')
                            .to_string()
                    })
                    .unwrap_or_else(|| "(unreadable)".into()),
                _ => "(unreadable)".into(),
            };
            return Elf::Dynamic {
                machine,
                interpreter,
            };
        }
    }
    Elf::Static {
        machine,
        pie: e_type == ET_DYN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian executable image for tests: a header and
    /// one program header (`PT_LOAD`), plus `PT_INTERP` naming `interp` when
    /// given. Not runnable; only for [`inspect`].
    fn sample(machine: u16, e_type: u16, interp: Option<&str>) -> Vec<u8> {
        let phnum: u16 = if interp.is_some() { 2 } else { 1 };
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&phnum.to_le_bytes());
        let interp_off = 64 + 56 * u64::from(phnum);
        if let Some(i) = interp {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
            ph[8..16].copy_from_slice(&interp_off.to_le_bytes());
            ph[32..40].copy_from_slice(&(i.len() as u64 + 1).to_le_bytes());
            b.extend_from_slice(&ph);
        }
        let mut load = vec![0u8; 56];
        load[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        b.extend_from_slice(&load);
        if let Some(i) = interp {
            b.extend_from_slice(i.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn static_and_dynamic_samples() {
        assert_eq!(
            inspect(&sample(62, ET_EXEC, None)),
            Elf::Static {
                machine: 62,
                pie: false
            }
        );
        assert_eq!(
            inspect(&sample(183, ET_DYN, None)),
            Elf::Static {
                machine: 183,
                pie: true
            }
        );
        assert_eq!(
            inspect(&sample(62, ET_DYN, Some("/lib64/ld-linux-x86-64.so.2"))),
            Elf::Dynamic {
                machine: 62,
                interpreter: "/lib64/ld-linux-x86-64.so.2".into()
            }
        );
    }

    #[test]
    fn not_elf_and_broken() {
        assert_eq!(inspect(b"#!/bin/sh\nexec true\n"), Elf::NotElf);
        assert_eq!(inspect(b""), Elf::NotElf);
        assert!(matches!(inspect(b"\x7fELF"), Elf::Unusable(_)));
        let mut obj = sample(62, 1, None); // ET_REL
        assert!(matches!(inspect(&obj), Elf::Unusable(_)));
        obj = sample(62, ET_EXEC, None);
        obj.truncate(80); // program header cut off
        assert!(matches!(inspect(&obj), Elf::Unusable(_)));
        let mut bad_class = sample(62, ET_EXEC, None);
        bad_class[4] = 9;
        assert!(matches!(inspect(&bad_class), Elf::Unusable(_)));
    }

    #[test]
    fn this_test_binary_is_a_real_elf_of_the_host_machine() {
        // The test binary is linked like any Rust program: dynamically
        // unless built with crt-static.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let head = &exe[..exe.len().min(READ_LIMIT)];
        match inspect(head) {
            Elf::Dynamic {
                machine,
                interpreter,
            } => {
                assert_eq!(Some(machine), host_machine());
                assert!(interpreter.starts_with('/'), "{interpreter}");
            }
            Elf::Static { machine, .. } => assert_eq!(Some(machine), host_machine()),
            other => panic!("{other:?}"),
        }
    }
}
