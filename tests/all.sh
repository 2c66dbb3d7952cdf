#!/usr/bin/env bash
# Build s3seal and run every test: the Rust tests, then the client battery in
# tests/clients. The Rust tests need the age command (tests/escrow.rs), and the
# battery needs rclone, s3cmd, openssl and the Python packages in
# tests/clients/requirements.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build
cargo test --all-targets
# pytest keeps the temporary directories of failed tests only, so repeated
# runs do not fill the disk with the battery's 100 MiB upload files.
python3 -m pytest tests/clients -q -p no:cacheprovider -o tmp_path_retention_policy=failed
