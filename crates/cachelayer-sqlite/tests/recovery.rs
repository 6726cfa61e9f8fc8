//! Opening a file that is not a usable cache database: the strict `open` fails and leaves the
//! file alone; `open_or_recover` sets it aside (with its `-wal` and `-shm`), logs one warning
//! and starts empty; a file that cannot be written is a `NotWritable` error for both.
#![allow(clippy::unwrap_used)]

use cachelayer_sqlite::{NotWritable, SqliteStore};
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Store};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

fn k(name: &str) -> CacheKey {
    CacheKey::custom(name)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Deterministic bytes that are not an SQLite file (xorshift).
fn garbage(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A cache file with 300 entries of 1 KiB bodies (about 400 KiB), closed (no `-wal` left).
async fn populated(dir: &Path) -> PathBuf {
    let path = dir.join("cache.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    for n in 0..300 {
        let entry = sample_entry(&format!("http://example.com/{n}"), vec![n as u8; 1024]);
        store
            .put(k(&format!("e{n}")), Arc::new(entry))
            .await
            .unwrap();
    }
    drop(store);
    assert!(!sibling(&path, "-wal").exists(), "closed cleanly");
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 256 * 1024, "{len} bytes");
    path
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

/// Counts the WARN events (and keeps their messages) emitted on this thread.
#[derive(Clone, Default)]
struct Warnings {
    count: Arc<AtomicUsize>,
    text: Arc<Mutex<Vec<String>>>,
}

impl Subscriber for Warnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::WARN {
            self.count.fetch_add(1, Ordering::SeqCst);
            self.text.lock().unwrap().push(format!("{event:?}"));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// `open_or_recover`, counting the WARN events it logs.
fn recover_counting_warnings(path: &Path) -> (SqliteStore, usize) {
    let warnings = Warnings::default();
    let store =
        tracing::subscriber::with_default(warnings.clone(), || SqliteStore::open_or_recover(path))
            .unwrap();
    eprintln!("warnings: {}", warnings.text.lock().unwrap().join("\n"));
    (store, warnings.count.load(Ordering::SeqCst))
}

/// The checks after a recovery: the damaged bytes are at `moved_to`, the store is empty and
/// works, and the new file opens strictly.
async fn assert_recovered(path: &Path, damaged: &[u8], reason_contains: &str) {
    let (store, warnings) = recover_counting_warnings(path);
    assert_eq!(warnings, 1, "one WARN event for one recovery");
    let recovery = store.recovery().expect("the file was set aside").clone();
    assert!(
        recovery.reason().contains(reason_contains),
        "reason {:?} should mention {reason_contains:?}",
        recovery.reason()
    );
    let name = recovery.moved_to().file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("cache.sqlite.corrupt-"),
        "moved to {}",
        recovery.moved_to().display()
    );
    assert_eq!(recovery.moved_to().parent(), path.parent());
    assert_eq!(
        std::fs::read(recovery.moved_to()).unwrap(),
        damaged,
        "the damaged file is kept, byte for byte"
    );
    assert_eq!(store.len().await.unwrap(), 0, "started empty");
    let entry = sample_entry("http://example.com/after", &b"after"[..]);
    store.put(k("after"), Arc::new(entry)).await.unwrap();
    assert_eq!(
        store.get(&k("after")).await.unwrap().unwrap().body[..],
        b"after"[..]
    );
    drop(store);
    let reopened = SqliteStore::open(path).unwrap();
    assert!(reopened.recovery().is_none());
    assert_eq!(reopened.len().await.unwrap(), 1);
    let (again, warnings) = recover_counting_warnings(path);
    assert!(again.recovery().is_none(), "a good file is not set aside");
    assert_eq!(warnings, 0);
}

#[tokio::test]
async fn garbage_over_the_start_of_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    overwrite(&path, 0, &garbage(64 * 1024));
    let damaged = std::fs::read(&path).unwrap();

    let error = SqliteStore::open(&path).unwrap_err();
    assert!(error.is_backend(), "{error}");
    assert!(error.to_string().contains("not a database"), "{error}");
    assert!(NotWritable::find(&error).is_none());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "strict open leaves it"
    );

    assert_recovered(&path, &damaged, "not a database").await;
}

/// Damage past the header is only seen when the pages are read: `quick_check` finds it.
#[tokio::test]
async fn garbage_in_the_middle_of_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    overwrite(&path, 64 * 1024, &garbage(64 * 1024));
    let damaged = std::fs::read(&path).unwrap();
    assert_recovered(&path, &damaged, "quick_check").await;
}

#[tokio::test]
async fn truncated_files() {
    for keep in [50u64, 4096, 100_000, 150_001] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path()).await;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(keep)
            .unwrap();
        let damaged = std::fs::read(&path).unwrap();
        eprintln!("truncated to {keep} bytes");
        assert_recovered(&path, &damaged, "").await;
    }
}

/// An empty file is a new database, not a damaged one.
#[tokio::test]
async fn an_empty_file_is_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    std::fs::write(&path, b"").unwrap();
    let (store, warnings) = recover_counting_warnings(&path);
    assert!(store.recovery().is_none());
    assert_eq!(warnings, 0);
    assert_eq!(store.len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_good_file_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    let (store, warnings) = recover_counting_warnings(&path);
    assert!(store.recovery().is_none());
    assert_eq!(warnings, 0);
    assert_eq!(store.len().await.unwrap(), 300);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("corrupt")),
        "{names:?}"
    );
}

/// Another application's SQLite database: the strict open refuses it (it used to add the
/// store's tables to it); `open_or_recover` sets it aside, whole.
#[tokio::test]
async fn an_sqlite_database_of_another_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users (name) VALUES ('ada'), ('grace');",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        error.to_string().contains("not a cachelayer cache"),
        "{error}"
    );
    assert!(error.to_string().contains("users"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "left as it was");

    let (store, warnings) = recover_counting_warnings(&path);
    assert_eq!(warnings, 1);
    let moved_to = store.recovery().unwrap().moved_to().to_owned();
    assert_eq!(store.len().await.unwrap(), 0);
    let users: i64 = rusqlite::Connection::open(&moved_to)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
        .unwrap();
    assert_eq!(users, 2, "the other application's data is intact");
}

/// A `responses` table with other columns, under this release's schema version.
#[tokio::test]
async fn a_responses_table_of_another_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, value BLOB);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    assert!(SqliteStore::open(&path).is_err());
    let (store, warnings) = recover_counting_warnings(&path);
    assert_eq!(warnings, 1);
    assert!(
        store
            .recovery()
            .unwrap()
            .reason()
            .contains("not a cachelayer cache")
    );
    let entry = sample_entry("http://example.com/", &b"x"[..]);
    store.put(k("x"), Arc::new(entry)).await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(error.to_string().contains("newer"), "{error}");
    let (store, warnings) = recover_counting_warnings(&path);
    assert_eq!(warnings, 1);
    assert!(store.recovery().unwrap().reason().contains("newer"));
    assert_eq!(store.len().await.unwrap(), 0);
}

/// No `-wal` or `-shm` of a damaged file stays beside the new one (a stale `-wal` would be
/// replayed into it): they are set aside with it, or SQLite already removed them (it deletes
/// the `-wal` files it cannot use when its last connection to the file closes).
#[tokio::test]
async fn no_stale_wal_or_shm_is_left_beside_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    overwrite(&path, 0, &garbage(4096));
    std::fs::write(sibling(&path, "-wal"), b"old wal").unwrap();
    std::fs::write(sibling(&path, "-shm"), b"old shm").unwrap();
    let (store, _) = recover_counting_warnings(&path);
    let moved_to = store.recovery().unwrap().moved_to().to_owned();
    for (suffix, old) in [("-wal", &b"old wal"[..]), ("-shm", &b"old shm"[..])] {
        if let Ok(kept) = std::fs::read(sibling(&moved_to, suffix)) {
            assert_eq!(kept, old, "{suffix} set aside");
        }
        let beside_new = std::fs::read(sibling(&path, suffix)).unwrap_or_default();
        assert_ne!(beside_new, old, "{suffix} left beside the new file");
    }
    assert_eq!(store.len().await.unwrap(), 0);
    let entry = sample_entry("http://example.com/", &b"x"[..]);
    store.put(k("x"), Arc::new(entry)).await.unwrap();
}

/// A file another connection holds locked is in use, not damaged: `open_or_recover` times out
/// and sets nothing aside.
#[tokio::test]
async fn a_locked_file_is_not_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path()).await;
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = SqliteStore::builder(&path)
        .busy_timeout(std::time::Duration::from_millis(200))
        .recover_damaged(true)
        .build()
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    locker.execute_batch("COMMIT").unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("corrupt")),
        "{names:?}"
    );
    let store = SqliteStore::open_or_recover(&path).unwrap();
    assert!(store.recovery().is_none());
    assert_eq!(store.len().await.unwrap(), 300);
}

/// A path that is a directory is an error, and leaves nothing beside it.
#[tokio::test]
async fn a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    std::fs::create_dir(&path).unwrap();
    for result in [
        SqliteStore::open(&path),
        SqliteStore::open_or_recover(&path),
    ] {
        let error = result.unwrap_err();
        assert!(error.is_backend(), "{error}");
        assert!(NotWritable::find(&error).is_none(), "{error}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cache.sqlite"]);
}

/// Two recoveries within one second do not overwrite each other's set-aside file.
#[tokio::test]
async fn two_recoveries_keep_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    let mut moved = Vec::new();
    for n in 0..2u8 {
        std::fs::write(&path, vec![b'a' + n; 8192]).unwrap();
        let (store, warnings) = recover_counting_warnings(&path);
        assert_eq!(warnings, 1);
        moved.push(store.recovery().unwrap().moved_to().to_owned());
    }
    assert_ne!(moved[0], moved[1]);
    assert_eq!(std::fs::read(&moved[0]).unwrap(), vec![b'a'; 8192]);
    assert_eq!(std::fs::read(&moved[1]).unwrap(), vec![b'b'; 8192]);
}

// ===== Files that cannot be written =====

const READ_ONLY_CHILD_ENV: &str = "CACHELAYER_SQLITE_TEST_READ_ONLY_DIR";

/// The read-only checks, run by a user who cannot write `dir` nor the files in it: every way of
/// opening is a `NotWritable` error, and nothing is set aside or changed.
fn check_read_only(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let good = dir.join("good.sqlite");
    let damaged = dir.join("damaged.sqlite");
    let before: Vec<_> = [&good, &damaged]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    // The strict open of the damaged file fails too, reporting the damage or the permissions
    // (whichever SQLite meets first).
    let strict_damaged = SqliteStore::open(&damaged).map(|_| ()).unwrap_err();
    assert!(strict_damaged.is_backend(), "{strict_damaged}");
    let cases = [
        ("strict open of a good file", SqliteStore::open(&good)),
        (
            "recovering open of a good file",
            SqliteStore::open_or_recover(&good),
        ),
        (
            "recovering open of a damaged file",
            SqliteStore::open_or_recover(&damaged),
        ),
        (
            "a new file in a read-only directory",
            SqliteStore::open_or_recover(dir.join("new.sqlite")),
        ),
        (
            "a new directory in a read-only directory",
            SqliteStore::open_or_recover(dir.join("sub").join("new.sqlite")),
        ),
    ];
    for (what, result) in cases {
        let error = match result {
            Ok(store) => panic!(
                "{what}: opened ({} entries)",
                runtime.block_on(store.len()).unwrap()
            ),
            Err(error) => error,
        };
        let found = NotWritable::find(&error).unwrap_or_else(|| panic!("{what}: {error}"));
        assert!(error.is_backend());
        assert!(error.to_string().contains("cannot be written"), "{error}");
        eprintln!("{what}: {error} ({})", found.path().display());
    }
    let after: Vec<_> = [&good, &damaged]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after, "nothing changed");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["damaged.sqlite", "good.sqlite"], "nothing created");
}

/// The child half of [`read_only_files_are_not_writable_errors`]; does nothing unless started
/// by it.
#[test]
fn read_only_child() {
    if let Some(dir) = std::env::var_os(READ_ONLY_CHILD_ENV) {
        check_read_only(Path::new(&dir));
    }
}

/// A read-only database file in a read-only directory.
///
/// Permission bits do not stop root (tests often run as root): then the checks run in a child
/// process (this binary, re-run as `read_only_child`) as the unprivileged user 65534. Only if
/// that is impossible too (no permission to change user) is the check skipped, with a message.
#[tokio::test]
async fn read_only_files_are_not_writable_errors() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    populated(&dir).await;
    std::fs::rename(dir.join("cache.sqlite"), dir.join("good.sqlite")).unwrap();
    std::fs::write(dir.join("damaged.sqlite"), garbage(16 * 1024)).unwrap();
    for file in ["good.sqlite", "damaged.sqlite"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let restore = || {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    };

    let privileged = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("good.sqlite"))
        .is_ok();
    if !privileged {
        check_read_only(&dir);
        restore();
        return;
    }
    use std::os::unix::process::CommandExt;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "read_only_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(READ_ONLY_CHILD_ENV, &dir)
        .uid(65534)
        .gid(65534)
        .output();
    restore();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("SKIPPED: running as root without permission to change user ({error})");
            return;
        }
        Err(error) => panic!("could not start the child process: {error}"),
    };
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("child process (uid 65534):\n{log}");
    assert!(output.status.success(), "the child's checks failed");
    assert!(log.contains("1 passed"), "the child ran its test");
}
