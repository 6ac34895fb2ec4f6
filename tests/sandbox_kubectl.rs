use heatcheck::sandbox::server::{serve_api, ApiConfig};
use heatcheck::sandbox::store::Store;

#[tokio::test]
#[ignore]
async fn scratch_server() {
    let h = serve_api(
        Store::new(),
        ApiConfig {
            port: 18080,
            token: Some("tok".into()),
        },
    )
    .await
    .unwrap();
    h.write_kubeconfig(std::path::Path::new("/tmp/hc/kubeconfig"))
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3000)).await;
}
