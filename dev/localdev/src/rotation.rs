//! Secrets Manager's part in a rotation, played locally (moto's `RotateSecret` would run the
//! function in Docker): each `AWS::SecretsManager::RotationSchedule` of the template has its
//! rotation function invoked with the four step events, in order, under one new token, through
//! `cargo lambda watch`. A step that fails stops the rotation, as on AWS.

use std::time::Duration;

use bytes::Bytes;

use crate::error::template_error;
use crate::gateway::invoke::Invoker;
use crate::intrinsics::{get_att, ref_target};
use crate::{Result, StackResources, Template};

/// Secrets Manager's rotation steps, in the order it runs them.
pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// A secret and the function that rotates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Logical ids.
    pub secret: String,
    pub function: String,
}

impl Schedule {
    /// Every rotation schedule of the template (`SecretId: !Ref <secret>`,
    /// `RotationLambdaARN: !GetAtt <function>.Arn`).
    pub fn all(template: &Template) -> Result<Vec<Self>> {
        let mut schedules = Vec::new();
        for id in template.resources_of_type("AWS::SecretsManager::RotationSchedule")? {
            let props = template.resource(&id).and_then(|r| r.get("Properties"));
            let secret = props.and_then(|p| p.get("SecretId")).and_then(ref_target);
            let function = props.and_then(|p| p.get("RotationLambdaARN")).and_then(get_att);
            match (secret, function) {
                (Some(secret), Some((function, attribute))) if attribute == "Arn" => {
                    schedules.push(Self { secret, function })
                }
                _ => {
                    return Err(template_error(format!(
                        "{id}: SecretId must be a !Ref and RotationLambdaARN a !GetAtt <function>.Arn"
                    )))
                }
            }
        }
        Ok(schedules)
    }

    /// The event of one step, as Secrets Manager sends it.
    pub fn event(&self, resources: &StackResources, step: &str, token: &str) -> Result<serde_json::Value> {
        let secret_id = resources
            .reference(&self.secret)
            .ok_or_else(|| template_error(format!("no local secret for {}", self.secret)))?;
        Ok(serde_json::json!({"Step": step, "SecretId": secret_id, "ClientRequestToken": token}))
    }

    /// Runs the four steps through the Lambda Invoke API at `invoke_url`; returns the new
    /// version's id.
    pub async fn rotate(&self, template: &Template, resources: &StackResources, invoke_url: &str) -> Result<String> {
        let binary = template.function(&self.function)?.binary;
        let invoker = Invoker::new(invoke_url, Duration::from_secs(120));
        let token = uuid::Uuid::new_v4().to_string();
        for step in STEPS {
            let event = self.event(resources, step, &token)?;
            invoker
                .invoke(&binary, Bytes::from(event.to_string()))
                .await
                .map_err(|e| template_error(format!("rotating {}: {step}: {e:?}", self.secret)))?;
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_template_then_the_key_ring_is_rotated_by_its_function() {
        let template = Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
        let schedules = Schedule::all(&template).unwrap();
        assert_eq!(
            schedules,
            [Schedule { secret: "KeyRingSecret".into(), function: "RotateSigningKeyFunction".into() }]
        );
    }

    #[test]
    fn given_a_schedule_without_a_function_of_the_template_then_it_is_refused() {
        let yaml = "Resources:\n  S: {Type: AWS::SecretsManager::Secret}\n  R:\n    Type: \
                    AWS::SecretsManager::RotationSchedule\n    Properties: {SecretId: !Ref S, RotationLambdaARN: \
                    'arn:aws:lambda:us-east-1:1:function:f'}\n";
        let template = Template::from_yaml(yaml, "").unwrap();
        assert!(Schedule::all(&template).is_err());
    }
}
