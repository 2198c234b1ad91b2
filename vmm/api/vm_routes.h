// What the API socket's endpoints do to a Vm and answer (Cloud Hypervisor's
// paths; JSON bodies):
//
//   GET /api/v1/vmm.ping      200 {"version": ...}
//   GET /api/v1/vm.info       200 state, uptime, config, devices
//   GET /api/v1/vm.counters   200 the VM's counters and every device's
//   PUT /api/v1/vm.pause      204 (409 unless running)
//   PUT /api/v1/vm.resume     204 (409 unless paused)
//   PUT /api/v1/vm.shutdown   204: the power button (Vm::RequestShutdown)
//   PUT /api/v1/vm.stop       204: stops at once (Vm::RequestStop)
//   PUT /api/v1/vm.snapshot   {"dir": "/abs/path"}: 204 once the paused VM is
//                             saved there (Vm::SaveSnapshot); 409 unless
//                             paused, or for a device that cannot be saved
//
// A PUT's body may be empty or a JSON object with no members ("{}"), except
// vm.snapshot's, which has exactly its one string member. Every
// error is one JSON object {"error": "<one line>"}: 400 for a body that is
// not JSON or has members the action does not take, 404 for an unknown
// path, 405 (with Allow) for the wrong method, 409 when the VM's state does
// not allow the action. No request can do more than that: the transport
// (api_server.h) bounds sizes, this file only reads what it was given.
#ifndef VMM_VMM_API_VM_ROUTES_H_
#define VMM_VMM_API_VM_ROUTES_H_

#include "vmm/api/api_server.h"
#include "vmm/vmm.h"

namespace vmm {

ApiResponse HandleVmRequest(Vm& vm, const ApiRequest& request);

}  // namespace vmm

#endif  // VMM_VMM_API_VM_ROUTES_H_
