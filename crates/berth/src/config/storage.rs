//! `DISTRIBUTED_STORAGE_CONFIG`: Quay's `{location: [Driver, {params}]}` map, read into Berth's
//! storage backends. Parameters are checked against each driver's own list.

use super::ConfigError;
use super::StorageLocation;
use super::values::{as_bool, as_string, err};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Parameters each Quay storage driver accepts (Quay's names); any other parameter is an error.
const DRIVER_PARAMS: &[(&str, &[&str])] = &[
    ("LocalStorage", &["storage_path"]),
    (
        "S3Storage",
        &[
            "storage_path",
            "s3_bucket",
            "s3_access_key",
            "s3_secret_key",
            "s3_region",
            "host",
            "port",
            "endpoint_url",
            "maximum_chunk_size_gb",
            "minimum_chunk_size_mb",
            "aws_session_token",
            "signature_version",
        ],
    ),
    (
        "RadosGWStorage",
        &[
            "hostname",
            "is_secure",
            "storage_path",
            "access_key",
            "secret_key",
            "bucket_name",
            "region_name",
            "signature_version",
            "port",
            "minimum_chunk_size_mb",
            "maximum_chunk_size_mb",
            "server_side_assembly",
        ],
    ),
    (
        "GoogleCloudStorage",
        &[
            "storage_path",
            "access_key",
            "secret_key",
            "bucket_name",
            "boto_timeout",
            "minimum_chunk_size_mb",
            "signature_version",
        ],
    ),
    (
        "AzureStorage",
        &[
            "azure_container",
            "storage_path",
            "azure_account_name",
            "azure_account_key",
            "sas_token",
            "endpoint_url",
        ],
    ),
];

fn parse_location(
    key: &str,
    name: &str,
    driver: &str,
    params: &Value,
    base: &Path,
) -> Result<StorageLocation, ConfigError> {
    let Some((_, allowed)) = DRIVER_PARAMS.iter().find(|(d, _)| *d == driver) else {
        let known: Vec<&str> = DRIVER_PARAMS.iter().map(|(d, _)| *d).collect();
        return err(
            key,
            format!(
                "location {name:?}: storage driver {driver:?} is not supported; use one of {}",
                known.join(", ")
            ),
        );
    };
    let Value::Object(p) = params else {
        return err(key, format!("location {name:?}: parameters must be a map"));
    };
    if let Some(bad) = p.keys().find(|k| !allowed.contains(&k.as_str())) {
        return err(
            key,
            format!(
                "location {name:?}: {driver} has no parameter {bad:?}; it takes {}",
                allowed.join(", ")
            ),
        );
    }
    let text = |k: &str| -> Result<Option<String>, ConfigError> {
        p.get(k)
            .filter(|v| !v.is_null())
            .map(|v| as_string(key, v))
            .transpose()
    };
    let need = |k: &str| -> Result<String, ConfigError> {
        text(k)?.map_or_else(
            || err(key, format!("location {name:?}: {driver} needs {k}")),
            Ok,
        )
    };
    let prefix = text("storage_path")?.unwrap_or_default();
    Ok(match driver {
        "LocalStorage" => {
            let path = PathBuf::from(need("storage_path")?);
            StorageLocation::Local {
                path: if path.is_absolute() {
                    path
                } else {
                    base.join(path)
                },
                fsync: true,
            }
        }
        "S3Storage" => {
            let endpoint = match (text("endpoint_url")?, text("host")?) {
                (Some(url), _) => Some(url),
                (None, Some(host)) => Some(match text("port")? {
                    Some(port) => format!("https://{host}:{port}"),
                    None => format!("https://{host}"),
                }),
                (None, None) => None,
            };
            StorageLocation::S3 {
                bucket: need("s3_bucket")?,
                prefix,
                region: text("s3_region")?,
                endpoint,
                access_key: text("s3_access_key")?,
                secret_key: text("s3_secret_key")?,
                session_token: text("aws_session_token")?,
            }
        }
        "RadosGWStorage" => {
            let secure = p
                .get("is_secure")
                .map(|v| as_bool(key, v))
                .transpose()?
                .unwrap_or(false);
            let scheme = if secure { "https" } else { "http" };
            let host = need("hostname")?;
            let endpoint = match text("port")? {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            StorageLocation::S3 {
                bucket: need("bucket_name")?,
                prefix,
                region: text("region_name")?,
                endpoint: Some(endpoint),
                access_key: text("access_key")?,
                secret_key: text("secret_key")?,
                session_token: None,
            }
        }
        // Quay reaches GCS through its S3-interoperable XML API with HMAC keys; so does Berth.
        "GoogleCloudStorage" => StorageLocation::S3 {
            bucket: need("bucket_name")?,
            prefix,
            region: Some("auto".into()),
            endpoint: Some("https://storage.googleapis.com".into()),
            access_key: Some(need("access_key")?),
            secret_key: Some(need("secret_key")?),
            session_token: None,
        },
        _ => StorageLocation::Azure {
            container: need("azure_container")?,
            prefix,
            account: need("azure_account_name")?,
            access_key: text("azure_account_key")?,
            sas_token: text("sas_token")?,
            endpoint: text("endpoint_url")?,
        },
    })
}

pub fn parse_storage(
    key: &str,
    v: &Value,
    base: &Path,
) -> Result<BTreeMap<String, StorageLocation>, ConfigError> {
    let Value::Object(map) = v else {
        return err(key, "expected a map of location name to [Driver, {params}]");
    };
    let mut out = BTreeMap::new();
    for (name, spec) in map {
        let (driver, params) = match spec {
            Value::Array(a) if a.len() == 2 => (a[0].as_str().unwrap_or(""), &a[1]),
            _ => {
                return err(
                    key,
                    format!("location {name:?} must be [DriverName, {{params}}]"),
                );
            }
        };
        out.insert(
            name.clone(),
            parse_location(key, name, driver, params, base)?,
        );
    }
    Ok(out)
}
