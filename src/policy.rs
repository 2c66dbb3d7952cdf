//! Per-bucket rules: which mode applies to a bucket and which key-encryption
//! key protects it. Rules are tried in config order and the first match
//! wins; a bucket that no rule matches is denied.

use crate::config::{BucketMode, BucketRule};

/// The rule that applies to one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketPolicy {
    Encrypt { key_name: String, rule_index: usize },
    Passthrough { rule_index: usize },
    Deny { rule_index: Option<usize> },
}

/// Compiled bucket rules.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<(glob::Pattern, BucketRule)>,
}

impl Policy {
    /// Compiles validated rules. Patterns that fail to compile were already
    /// rejected by `Config::validate`, and are skipped here.
    pub fn new(rules: &[BucketRule]) -> Self {
        let rules = rules
            .iter()
            .filter_map(|rule| {
                glob::Pattern::new(&rule.pattern)
                    .ok()
                    .map(|p| (p, rule.clone()))
            })
            .collect();
        Self { rules }
    }

    /// Returns the policy of `bucket`.
    pub fn for_bucket(&self, bucket: &str) -> BucketPolicy {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        for (index, (pattern, rule)) in self.rules.iter().enumerate() {
            if !pattern.matches_with(bucket, options) {
                continue;
            }
            return match rule.mode {
                BucketMode::Encrypt => BucketPolicy::Encrypt {
                    key_name: rule.key.clone().unwrap_or_default(),
                    rule_index: index,
                },
                BucketMode::Passthrough => BucketPolicy::Passthrough { rule_index: index },
                BucketMode::Deny => BucketPolicy::Deny {
                    rule_index: Some(index),
                },
            };
        }
        BucketPolicy::Deny { rule_index: None }
    }

    /// Returns the pattern of rule `index`, for messages.
    pub fn pattern(&self, index: usize) -> &str {
        self.rules
            .get(index)
            .map(|(_, rule)| rule.pattern.as_str())
            .unwrap_or("")
    }

    /// Returns the key names that encrypt rules refer to.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter_map(|(_, rule)| rule.key.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, mode: BucketMode, key: Option<&str>) -> BucketRule {
        BucketRule {
            pattern: pattern.into(),
            mode,
            key: key.map(Into::into),
        }
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
    }
}
