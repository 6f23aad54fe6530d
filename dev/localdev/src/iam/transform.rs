//! The SAM transform, run offline by `dev/scripts/sam_transform.py` (aws-sam-translator, as `sam
//! deploy` uses it), cached per template content.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{template_error, Error, Result};

/// The repository this tool belongs to: its scripts and installed tools.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The CloudFormation template SAM makes of `template` (JSON, parameters kept as `Ref`s), in
/// `.local/iam/`. Needs the tools `dev/scripts/tools.sh` installs. A template that is CloudFormation
/// already (JSON without a `Transform`) is used as it is.
pub fn transformed(template: &Path) -> Result<PathBuf> {
    let text = std::fs::read(template).map_err(|source| Error::Io { path: template.to_owned(), source })?;
    if serde_json::from_slice::<serde_json::Value>(&text).is_ok_and(|doc| doc.get("Transform").is_none()) {
        return Ok(template.to_owned());
    }
    let digest = Sha256::digest(&text);
    let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let out_dir = repo_root().join(".local/iam");
    let out = out_dir.join(format!("transformed-{name}.json"));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io { path: out_dir.clone(), source })?;
    let python = repo_root().join(".tools/venv/bin/python");
    if !python.is_file() {
        return Err(template_error(format!("{} missing: run dev/scripts/tools.sh first", python.display())));
    }
    // Write under a unique name first: several processes may transform the same template at once.
    let partial = out_dir.join(format!("transformed-{name}.{}.tmp", std::process::id()));
    let output = Command::new(&python)
        .arg(repo_root().join("dev/scripts/sam_transform.py"))
        .arg(template)
        .arg(&partial)
        .output()
        .map_err(|source| Error::Io { path: python.clone(), source })?;
    if !output.status.success() {
        return Err(template_error(format!(
            "SAM transform of {} failed: {}",
            template.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    std::fs::rename(&partial, &out).map_err(|source| Error::Io { path: out.clone(), source })?;
    Ok(out)
}
