#include "vmm/api/api_server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/eventfd.h"
#include "base/status_macros.h"
#include "base/unix_socket.h"
#include "base/unique_fd.h"
#include "vmm/seccomp_filter.h"

namespace vmm {
namespace {

// libevent reports what it dropped (a failed accept, a bad request) on
// stderr by default; a VMM's stderr is its user's. The answers a client gets
// say it all, so those messages go nowhere.
void DropLibeventLog(int /*severity*/, const char* /*message*/) {}

// After an accept() that failed for want of file descriptors the listener
// rests this long instead of spinning on the still-pending connection.
constexpr timeval kAcceptBackoff = {0, 100 * 1000};

const char* MethodName(evhttp_cmd_type method) {
  switch (method) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
  }
  return "?";
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Unknown";
}

}  // namespace

struct ApiServer::State {
  std::string path;
  ApiHandler handler;
  ApiServerOptions options;
  UniqueFd listen_fd;
  EventFd stop;
  event_base* base = nullptr;
  evhttp* http = nullptr;
  event* stop_event = nullptr;
  // Connections that have sent a request and are still open (the loop
  // thread only).
  absl::flat_hash_set<evhttp_connection*> connections;
  // ApiResponse::then of the answer being sent on a connection.
  absl::flat_hash_map<evhttp_connection*, std::function<void()>> pending;
  absl::Status confined;  // written before `started` is notified
  absl::Notification started;
  std::thread thread;

  explicit State(EventFd stop_fd) : stop(std::move(stop_fd)) {}
  ~State() {
    if (stop_event != nullptr) event_free(stop_event);
    if (http != nullptr) evhttp_free(http);  // closes the connections and the listener
    if (base != nullptr) event_base_free(base);
  }

  void Serve() {
    // An answer written to a client that has gone raises SIGPIPE, whose
    // default kills the process — the embedding program's too. Blocked on
    // this thread, the write fails with EPIPE instead (the signal stays
    // pending on this thread, harmlessly).
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    // Each answer's Date header comes from gmtime_r, and glibc reads the
    // time zone (opens /etc/localtime) the first time: now, unfiltered.
    const time_t now = ::time(nullptr);
    tm ignored;
    ::gmtime_r(&now, &ignored);
    confined = InstallSeccompFilter(SeccompThread::kApi, options.seccomp);
    started.Notify();
    if (confined.ok()) event_base_dispatch(base);
  }

  static void OnRequest(evhttp_request* request, void* arg) {
    static_cast<State*>(arg)->Answer(request);
  }

  static void OnConnectionClosed(evhttp_connection* connection, void* arg) {
    State* state = static_cast<State*>(arg);
    state->connections.erase(connection);
    state->RunPending(connection);  // its answer never got out
  }

  static void OnReplyComplete(evhttp_request* request, void* arg) {
    static_cast<State*>(arg)->RunPending(evhttp_request_get_connection(request));
  }

  void RunPending(evhttp_connection* connection) {
    auto it = pending.find(connection);
    if (it == pending.end()) return;
    std::function<void()> action = std::move(it->second);
    pending.erase(it);
    action();
  }

  static void OnStop(evutil_socket_t, short, void* arg) {
    event_base_loopbreak(static_cast<State*>(arg)->base);
  }

  // `arg` is evhttp's (the listener's user data), so the listener goes to
  // the one-shot timer that enables it again.
  static void OnAcceptError(evconnlistener* listener, void* /*arg*/) {
    const int error = EVUTIL_SOCKET_ERROR();
    if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM) return;
    evconnlistener_disable(listener);
    event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT, &State::OnResumeAccept,
                    listener, &kAcceptBackoff);
  }

  static void OnResumeAccept(evutil_socket_t, short, void* listener) {
    evconnlistener_enable(static_cast<evconnlistener*>(listener));
  }

  void Reply(evhttp_request* request, const ApiResponse& response) {
    evkeyvalq* headers = evhttp_request_get_output_headers(request);
    evbuffer* body = evbuffer_new();
    if (body == nullptr) {
      evhttp_send_error(request, 500, nullptr);
      return;
    }
    if (!response.body.empty()) {
      evhttp_add_header(headers, "Content-Type", "application/json");
      evbuffer_add(body, response.body.data(), response.body.size());
    }
    if (!response.allow.empty()) evhttp_add_header(headers, "Allow", response.allow.c_str());
    evhttp_send_reply(request, response.status, ReasonPhrase(response.status), body);
    evbuffer_free(body);
  }

  void Answer(evhttp_request* request) {
    evhttp_connection* connection = evhttp_request_get_connection(request);
    if (!connections.contains(connection)) {
      if (static_cast<int>(connections.size()) >= options.max_connections) {
        evhttp_add_header(evhttp_request_get_output_headers(request), "Connection", "close");
        Reply(request, {503,
                        absl::StrCat("{\"error\":\"too many API connections (at most ",
                                     options.max_connections, " at once)\"}"),
                        ""});
        return;
      }
      connections.insert(connection);
      evhttp_connection_set_closecb(connection, &State::OnConnectionClosed, this);
    }
    ApiRequest api_request;
    api_request.method = MethodName(evhttp_request_get_command(request));
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
    const char* path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
    api_request.path = path != nullptr ? path : "";
    evbuffer* input = evhttp_request_get_input_buffer(request);
    const size_t length = evbuffer_get_length(input);
    api_request.body.resize(length);
    if (length > 0) evbuffer_copyout(input, api_request.body.data(), length);
    ApiResponse response = handler(api_request);
    if (response.then) {
      pending[connection] = std::move(response.then);
      evhttp_request_set_on_complete_cb(request, &State::OnReplyComplete, this);
    }
    Reply(request, response);
  }
};

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& path,
                                                           ApiHandler handler,
                                                           ApiServerOptions options) {
  event_set_log_callback(&DropLibeventLog);
  ASSIGN_OR_RETURN(EventFd stop, EventFd::Create());
  auto state = std::make_unique<State>(std::move(stop));
  state->path = path;
  state->handler = std::move(handler);
  state->options = options;
  ASSIGN_OR_RETURN(state->listen_fd, ListenUnix(path, /*backlog=*/16, "api socket"));
  // From here on the socket file exists: remove it on any failure.
  auto fail = [&path](absl::string_view what) {
    ::unlink(path.c_str());
    return absl::InternalError(absl::StrCat("api socket ", path, ": ", what));
  };
  state->base = event_base_new();
  if (state->base == nullptr) return fail("cannot create its event loop");
  state->http = evhttp_new(state->base);
  if (state->http == nullptr) return fail("cannot create its HTTP server");
  evhttp_set_max_headers_size(state->http, options.max_header_bytes);
  evhttp_set_max_body_size(state->http, options.max_body_bytes);
  evhttp_set_timeout(state->http,
                     static_cast<int>(absl::ToInt64Seconds(options.idle_timeout) > 0
                                          ? absl::ToInt64Seconds(options.idle_timeout)
                                          : 1));
  // Every method reaches the handler, which answers 405 for the wrong one
  // (in JSON, with Allow), rather than libevent's bare 501.
  evhttp_set_allowed_methods(state->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(state->http, &State::OnRequest, state.get());
  evhttp_bound_socket* bound = evhttp_accept_socket_with_handle(state->http,
                                                                state->listen_fd.get());
  if (bound == nullptr) return fail("cannot accept on it");
  // evhttp closes the listening fd when it is freed.
  (void)state->listen_fd.Release();
  state->stop_event = event_new(state->base, state->stop.fd(), EV_READ, &State::OnStop,
                                state.get());
  if (state->stop_event == nullptr ||
      event_add(state->stop_event, nullptr) != 0) {
    return fail("cannot watch its stop event");
  }
  evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), &State::OnAcceptError);
  // The thread owns the event base from here until it is joined.
  State* raw = state.get();
  state->thread = std::thread([raw] { raw->Serve(); });
  state->started.WaitForNotification();
  if (!state->confined.ok()) {
    state->thread.join();
    return fail(state->confined.message());
  }
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(state)));
}

ApiServer::ApiServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

ApiServer::~ApiServer() {
  (void)state_->stop.Write();
  if (state_->thread.joinable()) state_->thread.join();
  const std::string path = state_->path;
  state_.reset();
  ::unlink(path.c_str());
}

const std::string& ApiServer::path() const { return state_->path; }

}  // namespace vmm
