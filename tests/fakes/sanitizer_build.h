// Whether this test binary was built with ASan or TSan: their runtimes make
// system calls the seccomp allow-lists do not list, so sanitizer builds run
// vmm's filters in log mode and tests of enforcement skip there.
#ifndef VMM_TESTS_FAKES_SANITIZER_BUILD_H_
#define VMM_TESTS_FAKES_SANITIZER_BUILD_H_

namespace vmm::testing {

inline bool SanitizerBuild() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_SANITIZER_BUILD_H_
