#include "examples/perf/gloo_baseline.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "collectives/kernels/reduce.h"
#include "gloo/allreduce.h"
#include "gloo/rendezvous/context.h"
#include "gloo/rendezvous/store.h"
#include "gloo/transport/tcp/device.h"
#include "runtime/bootstrap/tcp_store.h"

namespace silk::perf {
namespace {

// Gloo's Store over a Silk TcpStoreClient (blocking gets with a timeout).
class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(std::unique_ptr<bootstrap::TcpStoreClient> client, absl::Duration timeout)
      : client_(std::move(client)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    absl::Status s = client_->Set(key, std::string(data.begin(), data.end()));
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  std::vector<char> get(const std::string& key) override {
    auto value = client_->Get(key, timeout_);
    if (!value.ok()) throw std::runtime_error(std::string(value.status().message()));
    return std::vector<char>(value->begin(), value->end());
  }
  void wait(const std::vector<std::string>& keys) override {
    for (const auto& key : keys) get(key);
  }

 private:
  std::unique_ptr<bootstrap::TcpStoreClient> client_;
  absl::Duration timeout_;
};

class GlooRing : public GlooBaseline {
 public:
  explicit GlooRing(std::shared_ptr<gloo::rendezvous::Context> context) : context_(std::move(context)) {}

  absl::Status Allreduce(void* data, size_t count, DataType type, ReduceOp op) override {
    if (type == DataType::kFloat16 || type == DataType::kBFloat16) {
      return absl::UnimplementedError("the Gloo baseline does not offer float16/bfloat16");
    }
    gloo::AllreduceOptions options(context_);
    options.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
    // The same arithmetic as Silk's, so only the communication differs.
    const ReduceOp phase = op == ReduceOp::kAvg ? ReduceOp::kSum : op;
    options.setReduceFunction([type, phase](void* out, const void* a, const void* b, size_t n) {
      kernels::Reduce(type, phase, out, a, b, n);
    });
    switch (type) {
      case DataType::kFloat32: options.setOutput(static_cast<float*>(data), count); break;
      case DataType::kFloat64: options.setOutput(static_cast<double*>(data), count); break;
      case DataType::kInt8: options.setOutput(static_cast<int8_t*>(data), count); break;
      case DataType::kUint8: options.setOutput(static_cast<uint8_t*>(data), count); break;
      case DataType::kInt32: options.setOutput(static_cast<int32_t*>(data), count); break;
      case DataType::kInt64: options.setOutput(static_cast<int64_t*>(data), count); break;
      default: return absl::InvalidArgumentError("unsupported type");
    }
    try {
      gloo::allreduce(options);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrFormat("gloo allreduce: %s", e.what()));
    }
    if (op == ReduceOp::kAvg) kernels::Scale(type, data, count, context_->size);
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<gloo::rendezvous::Context> context_;
};

class HostedTcpStore : public HostedStore {
 public:
  explicit HostedTcpStore(std::unique_ptr<bootstrap::TcpStoreServer> server) : server_(std::move(server)) {}
  uint16_t port() const override { return server_->port(); }

 private:
  std::unique_ptr<bootstrap::TcpStoreServer> server_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HostedStore>> HostedStore::Start() {
  auto server = bootstrap::TcpStoreServer::Start("0.0.0.0", 0);
  if (!server.ok()) return server.status();
  return std::unique_ptr<HostedStore>(new HostedTcpStore(std::move(*server)));
}

absl::StatusOr<std::unique_ptr<GlooBaseline>> GlooBaseline::Connect(int rank, int size, const std::string& store_host,
                                                                     uint16_t store_port, const std::string& address,
                                                                     absl::Duration timeout) {
  auto client = bootstrap::TcpStoreClient::Connect(store_host, store_port, timeout);
  if (!client.ok()) return client.status();
  GlooStore store(std::move(*client), timeout);
  try {
    gloo::transport::tcp::attr attr(address.c_str());
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    context->setTimeout(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
    context->connectFullMesh(store, device);
    return std::unique_ptr<GlooBaseline>(new GlooRing(std::move(context)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrFormat("gloo rendezvous (rank %d of %d): %s", rank, size, e.what()));
  }
}

}  // namespace silk::perf
