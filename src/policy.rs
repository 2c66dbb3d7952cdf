//! Per-bucket rules: which mode applies to a bucket, which key-encryption
//! key protects it, and which clients may read, write, list or delete in
//! it.
//!
//! Rules are tried in config order and the first rule whose pattern
//! matches the bucket name wins, for the mode and the permissions alike.
//! Later rules never add permissions to an earlier match. A bucket that no
//! rule matches is denied.

use crate::config::{BucketMode, BucketRule, ANY_CLIENT};
use std::fmt;

/// The rule that applies to one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketPolicy {
    Encrypt { key_name: String, rule_index: usize },
    Passthrough { rule_index: usize },
    Deny { rule_index: Option<usize> },
}

/// The class of access that an S3 operation needs on a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    List,
    Delete,
}

impl Permission {
    pub const ALL: [Permission; 4] = [Self::Read, Self::Write, Self::List, Self::Delete];

    /// Returns the name used in the configuration and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::List => "list",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The clients that hold one permission of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    Any,
    Only(Vec<String>),
}

impl Principals {
    fn from_list(list: Option<&[String]>) -> Self {
        match list {
            None => Self::Any,
            Some(ids) if ids.iter().any(|id| id == ANY_CLIENT) => Self::Any,
            Some(ids) => Self::Only(ids.to_vec()),
        }
    }

    pub fn contains(&self, access_key_id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(ids) => ids.iter().any(|id| id == access_key_id),
        }
    }
}

impl fmt::Display for Principals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("[\"*\"]"),
            Self::Only(ids) => write!(f, "{ids:?}"),
        }
    }
}

/// The reason for a denied request. The `Display` form names the rule and
/// its pattern, for the server log; [`Denial::client_message`] leaves them
/// out, so that clients do not learn the bucket rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No rule matches the bucket.
    NoRule { bucket: String },
    /// The matching rule has mode `deny`.
    DenyRule {
        bucket: String,
        rule_index: usize,
        pattern: String,
    },
    /// The matching rule does not grant the permission to the client.
    NotGranted {
        bucket: String,
        rule_index: usize,
        pattern: String,
        permission: Permission,
        principal: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRule { bucket } => write!(f, "no bucket rule matches bucket {bucket:?}"),
            Self::DenyRule {
                bucket,
                rule_index,
                pattern,
            } => write!(
                f,
                "bucket rule {rule_index} (match = {pattern:?}) denies bucket {bucket:?}"
            ),
            Self::NotGranted {
                bucket,
                rule_index,
                pattern,
                permission,
                principal,
            } => write!(
                f,
                "bucket rule {rule_index} (match = {pattern:?}) does not grant {permission} \
                 on bucket {bucket:?} to {principal}"
            ),
        }
    }
}

impl std::error::Error for Denial {}

impl Denial {
    /// Returns the reason for the client's error message: the bucket, the
    /// permission and the client, without the rule's index or pattern.
    pub fn client_message(&self) -> String {
        match self {
            Self::NoRule { bucket } => format!("no bucket rule covers bucket {bucket:?}"),
            Self::DenyRule { bucket, .. } => format!("bucket {bucket:?} is denied to every client"),
            Self::NotGranted {
                bucket,
                permission,
                principal,
                ..
            } => format!("{principal} is not granted {permission} on bucket {bucket:?}"),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct CompiledRule {
    pattern: glob::Pattern,
    rule: BucketRule,
    /// Principals for read, write, list and delete, in [`Permission::ALL`]
    /// order.
    principals: [Principals; 4],
}

/// The effective settings of one rule, with absent permission lists
/// resolved to their defaults.
#[derive(Debug, Clone)]
pub struct EffectiveRule<'a> {
    pub index: usize,
    pub rule: &'a BucketRule,
    pub read: &'a Principals,
    pub write: &'a Principals,
    pub list: &'a Principals,
    pub delete: &'a Principals,
}

impl EffectiveRule<'_> {
    pub fn principals(&self, permission: Permission) -> &Principals {
        match permission {
            Permission::Read => self.read,
            Permission::Write => self.write,
            Permission::List => self.list,
            Permission::Delete => self.delete,
        }
    }
}

/// Compiled bucket rules.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<CompiledRule>,
}

const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Policy {
    /// Compiles validated rules. Patterns that fail to compile were already
    /// rejected by `Config::validate`, and are skipped here.
    pub fn new(rules: &[BucketRule]) -> Self {
        let rules = rules
            .iter()
            .filter_map(|rule| {
                let pattern = glob::Pattern::new(&rule.pattern).ok()?;
                let principals = rule
                    .permission_lists()
                    .map(|(_, list)| Principals::from_list(list));
                Some(CompiledRule {
                    pattern,
                    rule: rule.clone(),
                    principals,
                })
            })
            .collect();
        Self { rules }
    }

    /// Returns the first rule whose pattern matches `bucket`.
    pub fn matching_rule(&self, bucket: &str) -> Option<EffectiveRule<'_>> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, compiled)| compiled.pattern.matches_with(bucket, MATCH_OPTIONS))
            .map(|(index, compiled)| effective(index, compiled))
    }

    /// Returns every rule in file order.
    pub fn rules(&self) -> impl Iterator<Item = EffectiveRule<'_>> {
        self.rules
            .iter()
            .enumerate()
            .map(|(index, compiled)| effective(index, compiled))
    }

    /// Returns the policy of `bucket`.
    pub fn for_bucket(&self, bucket: &str) -> BucketPolicy {
        let Some(matched) = self.matching_rule(bucket) else {
            return BucketPolicy::Deny { rule_index: None };
        };
        let index = matched.index;
        match matched.rule.mode {
            BucketMode::Encrypt => BucketPolicy::Encrypt {
                key_name: matched.rule.key.clone().unwrap_or_default(),
                rule_index: index,
            },
            BucketMode::Passthrough => BucketPolicy::Passthrough { rule_index: index },
            BucketMode::Deny => BucketPolicy::Deny {
                rule_index: Some(index),
            },
        }
    }

    /// Checks that `principal` has `permission` on `bucket` under the
    /// first matching rule. A `deny` rule and an unmatched bucket deny
    /// every permission.
    pub fn authorize(
        &self,
        bucket: &str,
        principal: &str,
        permission: Permission,
    ) -> Result<(), Denial> {
        let Some(matched) = self.matching_rule(bucket) else {
            return Err(Denial::NoRule {
                bucket: bucket.into(),
            });
        };
        if matched.rule.mode == BucketMode::Deny {
            return Err(Denial::DenyRule {
                bucket: bucket.into(),
                rule_index: matched.index,
                pattern: matched.rule.pattern.clone(),
            });
        }
        if matched.principals(permission).contains(principal) {
            return Ok(());
        }
        Err(Denial::NotGranted {
            bucket: bucket.into(),
            rule_index: matched.index,
            pattern: matched.rule.pattern.clone(),
            permission,
            principal: principal.into(),
        })
    }

    /// Returns whether objects without an envelope in `bucket` may be read
    /// as stored. Only `encrypt` rules can allow it.
    pub fn allows_unencrypted_reads(&self, bucket: &str) -> bool {
        self.matching_rule(bucket).is_some_and(|matched| {
            matched.rule.mode == BucketMode::Encrypt && matched.rule.allow_unencrypted_reads
        })
    }

    /// Returns the pattern of rule `index`, for messages.
    pub fn pattern(&self, index: usize) -> &str {
        self.rules
            .get(index)
            .map(|compiled| compiled.rule.pattern.as_str())
            .unwrap_or("")
    }

    /// Returns the key names that encrypt rules refer to, each once.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        let names: std::collections::BTreeSet<&str> = self
            .rules
            .iter()
            .filter_map(|compiled| compiled.rule.key.as_deref())
            .collect();
        names.into_iter()
    }
}

fn effective(index: usize, compiled: &CompiledRule) -> EffectiveRule<'_> {
    let [read, write, list, delete] = &compiled.principals;
    EffectiveRule {
        index,
        rule: &compiled.rule,
        read,
        write,
        list,
        delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, mode: BucketMode, key: Option<&str>) -> BucketRule {
        BucketRule::new(pattern, mode, key.map(Into::into))
    }

    #[test]
    fn key_names_listed_once() {
        let policy = Policy::new(&[
            rule("a", BucketMode::Encrypt, Some("main")),
            rule("b", BucketMode::Encrypt, Some("other")),
            rule("*", BucketMode::Encrypt, Some("main")),
        ]);
        assert_eq!(
            policy.key_names().collect::<Vec<_>>(),
            vec!["main", "other"]
        );
    }

    fn ids(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn first_match_wins() {
        let policy = Policy::new(&[
            rule("logs", BucketMode::Passthrough, None),
            rule("secret-*", BucketMode::Encrypt, Some("k1")),
            rule("*", BucketMode::Encrypt, Some("k2")),
        ]);
        assert_eq!(
            policy.for_bucket("logs"),
            BucketPolicy::Passthrough { rule_index: 0 }
        );
        assert_eq!(
            policy.for_bucket("secret-a"),
            BucketPolicy::Encrypt {
                key_name: "k1".into(),
                rule_index: 1
            }
        );
        assert_eq!(
            policy.for_bucket("other"),
            BucketPolicy::Encrypt {
                key_name: "k2".into(),
                rule_index: 2
            }
        );
    }

    #[test]
    fn unmatched_bucket_denied() {
        let policy = Policy::new(&[rule("data-?", BucketMode::Encrypt, Some("k"))]);
        assert_eq!(
            policy.for_bucket("data-10"),
            BucketPolicy::Deny { rule_index: None }
        );
        assert!(matches!(
            policy.for_bucket("data-1"),
            BucketPolicy::Encrypt { .. }
        ));
        assert_eq!(
            policy.authorize("data-10", "A", Permission::Read),
            Err(Denial::NoRule {
                bucket: "data-10".into()
            })
        );
    }

    #[test]
    fn deny_rule_denies() {
        let policy = Policy::new(&[
            rule("legacy", BucketMode::Deny, None),
            rule("*", BucketMode::Passthrough, None),
        ]);
        assert_eq!(
            policy.for_bucket("legacy"),
            BucketPolicy::Deny {
                rule_index: Some(0)
            }
        );
        let denial = policy
            .authorize("legacy", "A", Permission::List)
            .unwrap_err();
        assert_eq!(
            denial.to_string(),
            "bucket rule 0 (match = \"legacy\") denies bucket \"legacy\""
        );
        assert_eq!(
            denial.client_message(),
            "bucket \"legacy\" is denied to every client"
        );
    }

    #[test]
    fn absent_lists_grant_everyone() {
        let policy = Policy::new(&[rule("*", BucketMode::Passthrough, None)]);
        for permission in Permission::ALL {
            assert_eq!(policy.authorize("b", "ANYONE", permission), Ok(()));
        }
    }

    #[test]
    fn lists_grant_named_clients_only() {
        let mut shared = rule("shared", BucketMode::Encrypt, Some("k"));
        shared.read = ids(&["READER", "WRITER"]);
        shared.write = ids(&["WRITER"]);
        shared.list = ids(&["*"]);
        shared.delete = ids(&[]);
        let policy = Policy::new(&[shared]);

        assert_eq!(
            policy.authorize("shared", "READER", Permission::Read),
            Ok(())
        );
        assert_eq!(
            policy.authorize("shared", "WRITER", Permission::Write),
            Ok(())
        );
        assert_eq!(
            policy.authorize("shared", "OTHER", Permission::List),
            Ok(())
        );
        let denial = policy
            .authorize("shared", "READER", Permission::Write)
            .unwrap_err();
        assert_eq!(
            denial.to_string(),
            "bucket rule 0 (match = \"shared\") does not grant write on bucket \"shared\" to READER"
        );
        assert_eq!(
            denial.client_message(),
            "READER is not granted write on bucket \"shared\""
        );
        assert!(policy
            .authorize("shared", "WRITER", Permission::Delete)
            .is_err());
    }

    #[test]
    fn later_rule_adds_no_permissions() {
        let mut narrow = rule("data-*", BucketMode::Passthrough, None);
        narrow.write = ids(&["ADMIN"]);
        let policy = Policy::new(&[narrow, rule("*", BucketMode::Passthrough, None)]);
        let denial = policy
            .authorize("data-1", "USER", Permission::Write)
            .unwrap_err();
        assert!(matches!(denial, Denial::NotGranted { rule_index: 0, .. }));
        assert_eq!(policy.authorize("other", "USER", Permission::Write), Ok(()));
    }

    #[test]
    fn unencrypted_reads_need_encrypt_rule() {
        let mut legacy = rule("legacy", BucketMode::Encrypt, Some("k"));
        legacy.allow_unencrypted_reads = true;
        let policy = Policy::new(&[legacy, rule("*", BucketMode::Encrypt, Some("k"))]);
        assert!(policy.allows_unencrypted_reads("legacy"));
        assert!(!policy.allows_unencrypted_reads("other"));
        assert!(!policy.allows_unencrypted_reads("legacy-2"));
    }
}
