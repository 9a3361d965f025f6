//! Directory dumps (`pg_dump -Fd`, mydumper): the one place that maps files
//! under a folder to stream names (`backup --files DIR`) and stream names
//! back to paths under a target folder (`restore --target DIR`). A name is
//! the file's path relative to the folder, `/`-separated. Names read back
//! come from storage and are checked before use: only plain relative paths
//! (no `..`, no absolute path, no empty part) are ever written, so a
//! restore cannot reach outside its target.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::CliFailure;

/// The regular files under `dir`, as (stream name, path), sorted by name.
/// Links and special files are skipped, each with a warning: a dump folder
/// holds none, and following links could read anything.
pub fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read folder {}", folder.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot read folder {}", folder.display()))?;
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                return Err(CliFailure::usage(format!(
                    "{} is not named in UTF-8: stream names must be",
                    path.display()
                ))
                .into());
            };
            let name = format!("{prefix}{name}");
            let kind = e
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                pending.push((path, format!("{name}/")));
            } else if kind.is_file() {
                found.push((name, path));
            } else {
                eprintln!(
                    "coffer: warning: {} is not a regular file or folder; skipped",
                    path.display()
                );
            }
        }
    }
    if found.is_empty() {
        return Err(CliFailure::usage(format!("{} holds no files", dir.display())).into());
    }
    found.sort();
    Ok(found)
}

/// Where stream `name` goes under `target`, if it is a plain relative path.
pub fn target_path(target: &Path, name: &str) -> Option<PathBuf> {
    let mut path = target.to_path_buf();
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_paths_and_only_plain_ones_map_back() {
        let dir = std::env::temp_dir().join(format!("coffer-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        for f in ["toc.dat", "3001.dat", "sub/a", "sub/deeper/b"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let names: Vec<String> = walk(&dir).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["3001.dat", "sub/a", "sub/deeper/b", "toc.dat"]);
        let t = Path::new("/restore");
        assert_eq!(
            target_path(t, "sub/a"),
            Some(PathBuf::from("/restore/sub/a"))
        );
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "",
            "a/",
            "./a",
            "a\0b",
        ] {
            assert_eq!(target_path(t, bad), None, "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(walk(&dir).is_err());
    }
}
