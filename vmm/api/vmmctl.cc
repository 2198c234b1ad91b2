// vmmctl: a small client for vmm's API socket (--api-socket PATH).
//
//   vmmctl PATH ping|info|counters|pause|resume|shutdown|stop
//   vmmctl PATH snapshot DIR
//
// Sends the command's request (vm_routes.h lists them), prints the JSON the
// VMM answers on stdout (nothing for the actions, which answer 204), and
// exits 0; an error answer is printed as one line on stderr, exit 1; a
// socket nobody serves, exit 3; bad usage, exit 2. HTTP over the Unix
// socket is libcurl's, JSON nlohmann's.
#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitApiError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Command {
  std::string_view name;
  std::string_view method;
  std::string_view endpoint;
  std::string_view parameter = "";  // the one argument, sent as {"<parameter>": ARG}
};

constexpr Command kCommands[] = {
    {"ping", "GET", "vmm.ping"},       {"info", "GET", "vm.info"},
    {"counters", "GET", "vm.counters"}, {"pause", "PUT", "vm.pause"},
    {"resume", "PUT", "vm.resume"},     {"shutdown", "PUT", "vm.shutdown"},
    {"stop", "PUT", "vm.stop"},         {"snapshot", "PUT", "vm.snapshot", "dir"},
};

int Usage() {
  std::fputs(
      "usage: vmmctl SOCKET COMMAND\n"
      "  SOCKET   the path vmm was given with --api-socket\n"
      "  COMMAND  ping      the VMM's version\n"
      "           info      state, uptime, configuration and devices (JSON)\n"
      "           counters  the VM's and every device's counters (JSON)\n"
      "           pause     stop the vCPUs and devices where they are\n"
      "           resume    let a paused guest run on\n"
      "           shutdown  press the guest's power button (stopped after --shutdown-grace)\n"
      "           stop      stop the guest at once\n"
      "           snapshot DIR  save the paused guest into DIR (vmm --restore DIR starts it)\n"
      "exit: 0 done, 1 the VMM refused (the reason on stderr), 2 usage, 3 no VMM at SOCKET\n",
      stderr);
  return kExitUsage;
}

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string socket = argv[1];
  const std::string_view name = argv[2];
  const Command* command = nullptr;
  for (const Command& c : kCommands) {
    if (c.name == name) command = &c;
  }
  if (command == nullptr) {
    std::fprintf(stderr, "vmmctl: unknown command '%s'\n", argv[2]);
    return Usage();
  }
  if (argc != (command->parameter.empty() ? 3 : 4)) return Usage();
  std::string request_body;
  if (!command->parameter.empty()) {
    std::string argument = argv[3];
    // The VMM wants an absolute path: a relative one is the caller's.
    if (!argument.empty() && argument[0] != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof(cwd)) != nullptr) argument = std::string(cwd) + "/" + argument;
    }
    // Bytes that are not UTF-8 are replaced rather than thrown on (a path
    // the VMM then fails to find, saying so).
    request_body = nlohmann::json{{std::string(command->parameter), argument}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  curl_global_init(CURL_GLOBAL_NOTHING);
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    std::fputs("vmmctl: cannot initialise libcurl\n", stderr);
    return kExitApiError;
  }
  const std::string url = "http://localhost/api/v1/" + std::string(command->endpoint);
  const std::string method(command->method);
  std::string body;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_slist* headers = nullptr;
  if (!request_body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request_body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request_body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  // A snapshot writes all of guest RAM: no limit for it; 30 s for the rest.
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, command->parameter.empty() ? 30L : 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode result = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  if (result != CURLE_OK) {
    std::fprintf(stderr, "vmmctl: %s: %s\n", socket.c_str(),
                 error[0] != '\0' ? error : curl_easy_strerror(result));
    return kExitUnreachable;
  }
  if (status >= 200 && status < 300) {
    if (!body.empty()) std::printf("%s\n", body.c_str());
    return kExitOk;
  }
  const nlohmann::json answer = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_object() && answer.contains("error") && answer["error"].is_string()) {
    std::fprintf(stderr, "vmmctl: %s (HTTP %ld)\n",
                 answer["error"].get<std::string>().c_str(), status);
  } else {
    std::fprintf(stderr, "vmmctl: the VMM answered HTTP %ld\n", status);
  }
  return kExitApiError;
}
