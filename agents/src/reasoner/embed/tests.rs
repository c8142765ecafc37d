use tools::sim::openai::{Scripted, ScriptedOpenAi, embedding_for};

use super::*;

const KEY: &str = "sk-embed-0123456789abcdef";

fn config(server: &ScriptedOpenAi, dimensions: Option<u32>) -> OpenAiEmbedderConfig {
    OpenAiEmbedderConfig {
        base_url: server.base_url(),
        model: "sim-embed".into(),
        api_key: Some(Secret::new(KEY)),
        dimensions,
        call_timeout: Duration::from_secs(10),
        ..OpenAiEmbedderConfig::default()
    }
}

/// Builds the embedder and embeds `texts` on a blocking thread, as async callers must.
async fn embed_blocking(
    config: OpenAiEmbedderConfig,
    texts: Vec<String>,
) -> Result<(OpenAiEmbedder, Vec<Vec<f32>>), EmbedError> {
    tokio::task::spawn_blocking(move || {
        let embedder = OpenAiEmbedder::new(config)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&texts)?;
        Ok((embedder, vectors))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn texts_are_embedded_in_batches_of_64_in_order() {
    let server = ScriptedOpenAi::start().await.unwrap();
    let texts: Vec<String> = (0..100)
        .map(|i| format!("validator {i} is in sync"))
        .collect();
    let (embedder, vectors) = embed_blocking(config(&server, Some(8)), texts.clone())
        .await
        .unwrap();
    assert_eq!(embedder.id(), "openai:sim-embed:8");
    assert_eq!(embedder.dims(), 8);
    assert_eq!(vectors.len(), 100);
    for (text, vector) in texts.iter().zip(&vectors) {
        let expected = embedding_for(text, 8);
        let close = vector
            .iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() < 1e-5);
        assert!(close, "{text}: {vector:?} vs {expected:?}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/embeddings");
    assert_eq!(requests[0].body["model"], "sim-embed");
    assert_eq!(requests[0].body["dimensions"], 8);
    assert_eq!(requests[0].body["input"].as_array().unwrap().len(), 64);
    assert_eq!(requests[1].body["input"].as_array().unwrap().len(), 36);
    assert_eq!(requests[1].body["input"][0], "validator 64 is in sync");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    // Dropped inside async code: its runtime stops without a panic.
    drop(embedder);
}

#[tokio::test]
async fn without_dimensions_one_probe_learns_the_width_and_names_the_space() {
    let server = ScriptedOpenAi::start().await.unwrap();
    let (embedder, vectors) = embed_blocking(config(&server, None), vec!["hello".into()])
        .await
        .unwrap();
    assert_eq!(embedder.id(), "openai:sim-embed:16");
    assert_eq!(vectors[0].len(), 16);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one probe, one batch");
    assert!(requests[0].body.get("dimensions").is_none());

    // A plain thread outside any runtime works as well (joined off the test's runtime, which
    // serves the scripted server).
    let config = config(&server, Some(4));
    let from_thread = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let embedder = OpenAiEmbedder::new(config)?;
            embedder.embed(&["from a thread"])
        })
        .join()
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(from_thread[0].len(), 4);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_tried_again_quota_is_not() {
    let server = ScriptedOpenAi::start().await.unwrap();
    server.push_embeddings([
        Scripted::rate_limited(0),
        Scripted::error(502, "server_error", None, "bad gateway"),
    ]);
    let (_, vectors) = embed_blocking(config(&server, Some(8)), vec!["one".into(), "two".into()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(server.requests().len(), 3);

    server.push_embeddings([Scripted::error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        &format!("You exceeded your current quota (key {KEY})"),
    )]);
    let before = server.requests().len();
    let error = embed_blocking(config(&server, Some(8)), vec!["one".into()])
        .await
        .unwrap_err();
    assert!(matches!(error, EmbedError::Unavailable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("insufficient_quota"), "{text}");
    assert!(text.contains("openai:sim-embed:8"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(server.requests().len() - before, 1, "quota is not retried");

    // Each attempt is async-openai's request with its own three retries (Retry-After honoured):
    // with one attempt, four 500s in a row are the end.
    let four = (0..4).map(|_| Scripted::error(500, "server_error", None, "overloaded"));
    server.push_embeddings(four);
    let before = server.requests().len();
    let once = OpenAiEmbedderConfig {
        max_attempts: 1,
        ..config(&server, Some(8))
    };
    let error = embed_blocking(once, vec!["one".into()]).await.unwrap_err();
    assert!(error.to_string().contains("HTTP 500"), "{error}");
    assert_eq!(server.requests().len() - before, 4);
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn wrong_widths_empty_texts_and_missing_endpoints_are_refused() {
    let server = ScriptedOpenAi::start().await.unwrap();
    // The endpoint ignores `dimensions`.
    server.set_embedding_dims(Some(12));
    let error = embed_blocking(config(&server, Some(8)), vec!["one".into()])
        .await
        .unwrap_err();
    assert!(matches!(error, EmbedError::BadOutput { .. }), "{error:?}");
    assert!(
        error.to_string().contains("has 12 values, expected 8"),
        "{error}"
    );

    server.set_embedding_dims(None);
    let error = embed_blocking(config(&server, Some(8)), vec!["one".into(), "  ".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(error, EmbedError::InvalidInput { index: 1, .. }),
        "{error:?}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = embed_blocking(
        OpenAiEmbedderConfig {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            max_attempts: 1,
            ..config(&server, Some(8))
        },
        vec!["one".into()],
    )
    .await
    .unwrap_err();
    assert!(matches!(error, EmbedError::Unavailable { .. }), "{error:?}");

    let error = OpenAiEmbedder::new(OpenAiEmbedderConfig {
        base_url: "ftp://models.example".into(),
        ..OpenAiEmbedderConfig::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("http or https"), "{error}");
}
