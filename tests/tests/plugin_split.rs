//! The privilege split, checked on the built plugin: it cannot open a
//! socket or change a file by itself, and it pulls in nothing but libc.

use std::process::Command;

fn plugin() -> std::path::PathBuf {
    testkit::sasl::plugin_dir().join("libsasl-xoauth2.so")
}

fn tool_output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (binutils/cargo must be installed)"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn plugin_imports_no_network_or_file_changing_function() {
    let text = tool_output(
        Command::new("nm")
            .args(["-D", "--undefined-only"])
            .arg(plugin()),
    );
    let imported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.split('@').next().unwrap())
        .collect();
    assert!(
        imported.contains(&"fork"),
        "sanity: the list is real: {imported:?}"
    );
    let forbidden = [
        "socket",
        "connect",
        "bind",
        "listen",
        "accept",
        "accept4",
        "sendto",
        "sendmsg",
        "recvfrom",
        "recvmsg",
        "getaddrinfo",
        "gethostbyname",
        "rename",
        "renameat",
        "unlink",
        "unlinkat",
        "creat",
        "truncate",
        "ftruncate",
        "mkdir",
        "rmdir",
        "link",
        "symlink",
        "chmod",
        "fchmod",
        "chown",
        "fchown",
    ];
    let hits: Vec<&&str> = forbidden.iter().filter(|f| imported.contains(f)).collect();
    assert!(hits.is_empty(), "the plugin imports {hits:?}");
}

#[test]
fn plugin_needs_only_libc_and_libgcc() {
    let text = tool_output(Command::new("readelf").arg("-d").arg(plugin()));
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "{text}");
    for lib in &needed {
        assert!(
            [
                "libc.so.6",
                "libgcc_s.so.1",
                "ld-linux-x86-64.so.2",
                "ld-linux-aarch64.so.1"
            ]
            .contains(lib),
            "unexpected dependency {lib} in {needed:?}"
        );
    }
}

#[test]
fn plugin_dependency_tree_has_no_network_crate() {
    let tree = tool_output(
        Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-p",
                "sasl-xoauth2-plugin",
                "-e",
                "normal",
                "--prefix",
                "none",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(tree.contains("sasl-xoauth2-common"), "{tree}");
    for net in [
        "ureq", "rustls", "ring", "hyper", "reqwest", "tokio", "mio", "socket2", "webpki",
    ] {
        assert!(
            !tree
                .lines()
                .any(|l| l.split_whitespace().next() == Some(net)),
            "{net} in the plugin's dependencies:\n{tree}"
        );
    }
}
