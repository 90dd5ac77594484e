//! `kill -9` of the control plane, on both backends: nothing acknowledged is lost and no
//! write is half done.

use tollgate_sdk::proto;
use tollgate_tests::{Backend, ControlPlane};

fn llm(name: &str) -> proto::CreateAiLlmRequest {
    proto::CreateAiLlmRequest {
        workspace_id: "default".into(),
        name: name.into(),
        ai_type: proto::AiType::Openai as i32,
        endpoint: "http://127.0.0.1:9/v1".into(),
        secret: format!("sk-restart-{name}-secret"),
        ..Default::default()
    }
}

async fn kill9_loses_nothing(backend: Backend) {
    let mut cp = ControlPlane::start(backend).await;
    let client = cp.client().await;
    client
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "default".into(),
            name: "repo".into(),
        })
        .await
        .expect("repo");
    let mut results = Vec::new();
    for i in 0..10 {
        let name = format!("llm-{i}");
        client.create_ai_llm(llm(&name)).await.expect("create");
        results.push((name, true));
    }
    // Writes in flight while the process dies.
    let mut tasks = Vec::new();
    for i in 10..40 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("llm-{i}");
            let ok = c.create_ai_llm(llm(&name)).await.is_ok();
            (name, ok)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    cp.kill9().await;
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let acknowledged: Vec<_> = results
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "some writes landed before the kill"
    );

    cp.restart().await;
    let client = cp.client().await;
    let listed = client
        .list_ai_llms(proto::ListAiLlmsRequest::default())
        .await
        .expect("list");
    let names: Vec<_> = listed.ai_llms.iter().map(|l| l.name.clone()).collect();
    for n in &acknowledged {
        assert!(names.contains(n), "acknowledged write {n} was lost");
    }
    // No half writes: every name is either fully there or fully free.
    for (name, _) in &results {
        match client.create_ai_llm(llm(name)).await {
            Ok(_) => assert!(!names.contains(name)),
            Err(e) => {
                assert_eq!(e.code(), Some(tonic::Code::AlreadyExists), "{name}: {e:?}");
                client
                    .get_ai_llm(proto::GetAiLlmRequest {
                        id: name.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("an existing name has its record");
            }
        }
    }
    client
        .get_repository(proto::GetRepositoryRequest {
            id: "repo".into(),
            ..Default::default()
        })
        .await
        .expect("the repository survived");
    // The secrets written before the kill still decrypt: an update with the same secret is a
    // no-op, which needs the stored one.
    let first = &acknowledged[0];
    let before = client
        .get_ai_llm(proto::GetAiLlmRequest {
            id: first.clone(),
            ..Default::default()
        })
        .await
        .expect("get");
    let after = client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: first.clone(),
            secret: Some(format!("sk-restart-{first}-secret")),
            ..Default::default()
        })
        .await
        .expect("update")
        .ai_llm
        .expect("llm");
    assert_eq!(before.version, after.version, "same secret: unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_nothing_embedded() {
    kill9_loses_nothing(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_nothing_etcd() {
    kill9_loses_nothing(Backend::Etcd).await;
}
