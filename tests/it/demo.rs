//! The README's first command must work: `handoff demo`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_end_to_end() {
    gateway::demo::run().await.expect("demo succeeds");
}
