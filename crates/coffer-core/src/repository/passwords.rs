//! Password management: listing, adding and removing key files. Several
//! key files seal the same master key, one per password; the key in use and
//! the last key can never be removed. Adding writes a new key file before
//! anything is removed, so a crash never leaves a repository without a key.

use super::{blocking, now_unix_ns, Actor, Repository};
use crate::backend::{object_path, Kind};
use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::keys;

/// A key file as `key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key file id.
    pub id: KeyId,
    /// Whether this key opened the repository now.
    pub current: bool,
    /// Who added it.
    pub user: String,
    /// Where from.
    pub host: String,
    /// When (Unix ns).
    pub created_unix_ns: i64,
    /// Its Argon2id costs.
    pub kdf: KdfParams,
}

impl Repository {
    /// Every key file.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for name in self.backend.list(Kind::Key).await? {
            let path = object_path(Kind::Key, &name);
            let body = keys::parse(&self.backend.get(&path).await?)
                .map_err(|e| Error::corrupt(path.clone(), e))?;
            let id = KeyId::from_hex(&name)
                .ok_or_else(|| Error::corrupt(path, "name is not a key id"))?;
            out.push(KeyInfo {
                id,
                current: id == self.key_id,
                user: body.user,
                host: body.host,
                created_unix_ns: body.created_unix_ns,
                kdf: body.kdf,
            });
        }
        out.sort_by_key(|k| (k.created_unix_ns, k.id));
        Ok(out)
    }

    /// Adds a key file that opens the repository with `password`.
    pub async fn add_key(&self, password: &[u8], kdf: KdfParams, actor: &Actor) -> Result<KeyId> {
        let (key, password, actor) = (self.key.clone(), password.to_vec(), actor.clone());
        let (id, bytes) = blocking(move || {
            keys::create(
                &key,
                &password,
                kdf,
                &actor.host,
                &actor.user,
                now_unix_ns(),
            )
        })
        .await
        .map_err(Error::InvalidArgument)?;
        self.backend
            .put_new(&object_path(Kind::Key, &id.to_hex()), bytes.into())
            .await?;
        Ok(id)
    }

    /// Finds a key by id prefix.
    pub async fn find_key(&self, prefix: &str) -> Result<KeyId> {
        let keys = self.list_keys().await?;
        let prefix = prefix.to_ascii_lowercase();
        let matches: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| k.id.to_hex().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] if !prefix.is_empty() => Ok(one.id),
            [] | [_] => Err(Error::KeyNotFound(format!("no key matches {prefix:?}"))),
            many => Err(Error::KeyNotFound(format!(
                "key id prefix {prefix:?} is ambiguous: it matches {} keys",
                many.len()
            ))),
        }
    }

    /// Removes a key file; refuses the key in use and the last key.
    pub async fn remove_key(&self, id: KeyId) -> Result<()> {
        if id == self.key_id {
            return Err(Error::InvalidArgument(format!(
                "key {} opened the repository and cannot be removed; open it with another password to remove it",
                id.short()
            )));
        }
        let keys = self.list_keys().await?;
        if !keys.iter().any(|k| k.id == id) {
            return Err(Error::KeyNotFound(format!("no key {}", id.short())));
        }
        if keys.len() <= 1 {
            return Err(Error::InvalidArgument(
                "the last key cannot be removed".into(),
            ));
        }
        self.backend
            .delete(&object_path(Kind::Key, &id.to_hex()))
            .await
    }

    /// Changes the password: adds a key for `new_password`, then removes the
    /// key in use. Returns the new key's id.
    pub async fn change_password(
        &mut self,
        new_password: &[u8],
        kdf: KdfParams,
        actor: &Actor,
    ) -> Result<KeyId> {
        let new = self.add_key(new_password, kdf, actor).await?;
        let old = std::mem::replace(&mut self.key_id, new);
        self.backend
            .delete(&object_path(Kind::Key, &old.to_hex()))
            .await?;
        Ok(new)
    }
}
