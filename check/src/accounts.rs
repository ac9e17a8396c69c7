//! Users and groups from `/etc/passwd` and `/etc/group`, read as files.
//!
//! The helper is a static executable, and glibc's `getpwnam` in a static
//! program needs NSS modules loaded at run time; the mail system's user is
//! a local system account on every distribution, so the files are enough
//! and the parsing is pure (unit-tested below).

use std::path::Path;

/// A user as the permission checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Primary group first, then supplementary groups.
    pub gids: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// name, uid, primary gid
    users: Vec<(String, u32, u32)>,
    /// name, gid, members
    groups: Vec<(String, u32, Vec<String>)>,
}

impl Accounts {
    /// Read `/etc/passwd` and `/etc/group` (missing files: no entries).
    pub fn load() -> Accounts {
        let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
        Accounts::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let users = passwd
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 4 || f[0].is_empty() {
                    return None;
                }
                Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?))
            })
            .collect();
        let groups = group
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 3 || f[0].is_empty() {
                    return None;
                }
                let members = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((f[0].to_string(), f[2].parse().ok()?, members))
            })
            .collect();
        Accounts { users, groups }
    }

    /// The user `name` with all its groups.
    pub fn user(&self, name: &str) -> Option<User> {
        let (n, uid, gid) = self.users.iter().find(|(n, _, _)| n == name)?;
        let mut gids = vec![*gid];
        for (_, g, members) in &self.groups {
            if members.iter().any(|m| m == n) && !gids.contains(g) {
                gids.push(*g);
            }
        }
        Some(User {
            name: n.clone(),
            uid: *uid,
            gids,
        })
    }

    /// `name` of uid, or the number.
    pub fn user_name(&self, uid: u32) -> String {
        self.users
            .iter()
            .find(|(_, u, _)| *u == uid)
            .map_or_else(|| uid.to_string(), |(n, _, _)| n.clone())
    }

    /// `name` of gid, or the number.
    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .iter()
            .find(|(_, g, _)| *g == gid)
            .map_or_else(|| gid.to_string(), |(n, _, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        postfix:x:107:113::/var/spool/postfix:/usr/sbin/nologin\n\
        broken line\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        postfix:x:113:\n\
        postdrop:x:114:\n\
        ssl-cert:x:110:postfix,alice\n\
        alice:x:1000:\n";

    #[test]
    fn users_with_groups_and_names() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert_eq!(
            a.user("postfix"),
            Some(User {
                name: "postfix".into(),
                uid: 107,
                gids: vec![113, 110]
            })
        );
        assert_eq!(a.user("root").unwrap().gids, vec![0]);
        assert_eq!(a.user("nobody"), None);
        assert_eq!(a.user_name(1000), "alice");
        assert_eq!(a.user_name(4242), "4242");
        assert_eq!(a.group_name(114), "postdrop");
        assert_eq!(a.group_name(9), "9");
        assert_eq!(Accounts::parse("", "").user("root"), None);
    }
}
