// The API socket's endpoints over a fake Vm: what each one does to the VM
// and answers, and one clear JSON error for every kind of bad request.
#include "vmm/api/vm_routes.h"

#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_vm.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;
using ::vmm::testing::FakeVm;
using Json = nlohmann::json;

// One request, and what the server does once its answer is out.
ApiResponse Send(Vm& vm, std::string method, std::string path, std::string body = "") {
  ApiResponse response =
      HandleVmRequest(vm, ApiRequest{std::move(method), std::move(path), std::move(body)});
  if (response.then) response.then();
  return response;
}

// The body as JSON; a test fails if it is not.
Json Body(const ApiResponse& response) {
  Json json = Json::parse(response.body, nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << response.body;
  return json;
}

// An error answer: the status, and one line in {"error": ...}.
void ExpectError(const ApiResponse& response, int status, const std::string& words) {
  EXPECT_EQ(response.status, status) << response.body;
  Json json = Body(response);
  ASSERT_TRUE(json.is_object() && json.contains("error") && json["error"].is_string())
      << response.body;
  const std::string message = json["error"];
  EXPECT_THAT(message, HasSubstr(words));
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

VmConfig SomeConfig() {
  VmConfig config;
  config.kernel_path = "/boot/vmlinuz";
  config.cmdline = "console=ttyS0";
  config.cpus = 2;
  config.memory_bytes = 256ull << 20;
  return config;
}

TEST(VmRoutesTest, InfoSaysStateConfigAndDevices) {
  FakeVm vm(SomeConfig());
  DeviceInfo disk;
  disk.kind = "virtio-blk";
  disk.transport = "pci";
  disk.address = "0000:00:01.0";
  disk.active = true;
  vm.set_devices({disk});
  const ApiResponse response = Send(vm, "GET", "/api/v1/vm.info");
  ASSERT_EQ(response.status, 200) << response.body;
  const Json info = Body(response);
  EXPECT_EQ(info["state"], "running");
  EXPECT_EQ(info["vcpus"], 2);
  EXPECT_EQ(info["config"]["kernel"], "/boot/vmlinuz");
  EXPECT_EQ(info["config"]["cmdline"], "console=ttyS0");
  EXPECT_EQ(info["config"]["memory_bytes"], 256ull << 20);
  EXPECT_TRUE(info["config"]["timeout_seconds"].is_null());
  ASSERT_EQ(info["devices"].size(), 1u);
  EXPECT_EQ(info["devices"][0]["kind"], "virtio-blk");
  EXPECT_EQ(info["devices"][0]["address"], "0000:00:01.0");
  EXPECT_EQ(info["devices"][0]["active"], true);
}

TEST(VmRoutesTest, InfoIsValidJsonWhateverBytesThePathsHold) {
  VmConfig config = SomeConfig();
  config.kernel_path = "/tmp/\xff\xfe kernel \"quoted\"\n";
  FakeVm vm(config);
  const ApiResponse response = Send(vm, "GET", "/api/v1/vm.info");
  ASSERT_EQ(response.status, 200);
  EXPECT_THAT(Body(response)["config"]["kernel"].get<std::string>(), HasSubstr("kernel \"quoted\""));
}

TEST(VmRoutesTest, CountersListTheVmsAndEachDevicesCounters) {
  FakeVm vm;
  VmStats stats;
  stats.pio_exits = 42;
  vm.set_stats(stats);
  DeviceInfo rng;
  rng.kind = "virtio-rng";
  rng.transport = "mmio";
  rng.address = "0xd0000000";
  rng.counters = {{"used_interrupts", 7}, {"bytes", 4096}};
  vm.set_devices({rng});
  const ApiResponse response = Send(vm, "GET", "/api/v1/vm.counters");
  ASSERT_EQ(response.status, 200) << response.body;
  const Json counters = Body(response);
  EXPECT_EQ(counters["vm"]["pio_exits"], 42);
  ASSERT_EQ(counters["devices"].size(), 1u);
  EXPECT_EQ(counters["devices"][0]["kind"], "virtio-rng");
  EXPECT_EQ(counters["devices"][0]["counters"]["bytes"], 4096);
  EXPECT_EQ(counters["devices"][0]["counters"]["used_interrupts"], 7);
}

TEST(VmRoutesTest, PingSaysTheVersion) {
  FakeVm vm;
  const ApiResponse response = Send(vm, "GET", "/api/v1/vmm.ping");
  ASSERT_EQ(response.status, 200);
  EXPECT_TRUE(Body(response)["version"].is_string());
}

TEST(VmRoutesTest, PauseAndResumeFollowTheVmsState) {
  FakeVm vm;
  EXPECT_EQ(Send(vm, "PUT", "/api/v1/vm.pause").status, 204);
  EXPECT_EQ(vm.state(), VmState::kPaused);
  EXPECT_EQ(Body(Send(vm, "GET", "/api/v1/vm.info"))["state"], "paused");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.pause"), 409, "not running");
  EXPECT_EQ(Send(vm, "PUT", "/api/v1/vm.resume", "{}").status, 204);
  EXPECT_EQ(vm.state(), VmState::kRunning);
  ExpectError(Send(vm, "PUT", "/api/v1/vm.resume"), 409, "not paused");
}

TEST(VmRoutesTest, ShutdownPressesTheButtonAndStopStops) {
  FakeVm vm;
  const ApiResponse shutdown = Send(vm, "PUT", "/api/v1/vm.shutdown");
  EXPECT_EQ(shutdown.status, 204);
  EXPECT_TRUE(shutdown.body.empty());
  EXPECT_EQ(vm.shutdowns(), 1);
  EXPECT_EQ(vm.stops(), 0);
  ApiResponse stop = HandleVmRequest(vm, {"PUT", "/api/v1/vm.stop", ""});
  EXPECT_EQ(stop.status, 204);
  EXPECT_EQ(vm.stops(), 0) << "the stop waits for its answer to be sent";
  ASSERT_TRUE(stop.then);
  stop.then();
  EXPECT_EQ(vm.stops(), 1);
  ExpectError(Send(vm, "PUT", "/api/v1/vm.stop"), 409, "ended");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.shutdown"), 409, "ended");
  EXPECT_EQ(vm.shutdowns(), 1);
}

TEST(VmRoutesTest, SnapshotTakesAnAbsoluteDirOfAPausedVm) {
  FakeVm vm;
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot", R"({"dir": "/var/tmp/snap"})"), 409,
              "not paused");
  ASSERT_EQ(Send(vm, "PUT", "/api/v1/vm.pause").status, 204);
  EXPECT_EQ(Send(vm, "PUT", "/api/v1/vm.snapshot", R"({"dir": "/var/tmp/snap"})").status, 204);
  EXPECT_THAT(vm.snapshots(), ::testing::ElementsAre("/var/tmp/snap"));
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot"), 400, "{\"dir\"");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot", "{}"), 400, "{\"dir\"");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot", R"({"dir": 7})"), 400, "{\"dir\"");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot", R"({"dir": "/a", "x": 1})"), 400,
              "{\"dir\"");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot", R"({"dir": "relative/snap"})"), 400,
              "absolute");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.snapshot",
                   absl::StrCat(R"({"dir": "/)", std::string(5000, 'd'), R"("})")),
              400, "longer than");
  EXPECT_EQ(vm.snapshots().size(), 1u) << "a refused request saved nothing";
}

TEST(VmRoutesTest, UnknownPathsAre404NamingTheEndpoints) {
  FakeVm vm;
  ExpectError(Send(vm, "GET", "/api/v1/vm.reboot"), 404, "vm.info");
  ExpectError(Send(vm, "GET", "/"), 404, "/api/v1/");
  ExpectError(Send(vm, "GET", ""), 404, "/api/v1/");
  ExpectError(Send(vm, "GET", "/api/v1/" + std::string(5000, 'x')), 404, "...");
  EXPECT_LT(Send(vm, "GET", "/api/v1/" + std::string(5000, 'x')).body.size(), 600u)
      << "a long path is not echoed whole";
}

TEST(VmRoutesTest, TheWrongMethodIs405WithAllow) {
  FakeVm vm;
  ApiResponse response = Send(vm, "GET", "/api/v1/vm.pause");
  ExpectError(response, 405, "PUT");
  EXPECT_EQ(response.allow, "PUT");
  EXPECT_EQ(vm.state(), VmState::kRunning) << "a refused request does nothing";
  response = Send(vm, "DELETE", "/api/v1/vm.info");
  ExpectError(response, 405, "GET");
  EXPECT_EQ(response.allow, "GET");
}

TEST(VmRoutesTest, ABodyThatIsNotJsonIs400AndDoesNothing) {
  FakeVm vm;
  ExpectError(Send(vm, "PUT", "/api/v1/vm.stop", "{\"force\": tru"), 400, "not valid JSON");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.stop", "\xff\xfe"), 400, "not valid JSON");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.stop", "{\"force\": true}"), 400, "no parameters");
  ExpectError(Send(vm, "PUT", "/api/v1/vm.stop", "[]"), 400, "no parameters");
  EXPECT_EQ(vm.stops(), 0);
  EXPECT_EQ(Send(vm, "PUT", "/api/v1/vm.stop", " \r\n").status, 204) << "blank is no body";
}

TEST(VmRoutesTest, DeeplyNestedJsonIsAnsweredNotACrash) {
  FakeVm vm;
  const std::string deep = std::string(16 * 1024, '[') + std::string(16 * 1024, ']');
  ExpectError(Send(vm, "PUT", "/api/v1/vm.pause", deep), 400, "no parameters");
}

}  // namespace
}  // namespace vmm
