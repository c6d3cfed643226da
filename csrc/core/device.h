// The device seam: every array argument says where its memory lives, and each op keeps one
// implementation per device. The CPU implementations register themselves; a CUDA backend adds its own
// entries from its own translation units without touching the CPU code.
#pragma once
#include <array>
#include <stdexcept>
#include <string>

namespace convkit {

enum class Device { cpu, cuda };
constexpr int kNumDevices = 2;

inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

// One function pointer per device for an op called `op_name`.
template <class Fn>
class DeviceTable {
 public:
  explicit DeviceTable(const char* op_name) : op_name_(op_name) {}

  void set(Device d, Fn fn) { impl_[static_cast<int>(d)] = fn; }

  Fn get(Device d) const {
    Fn fn = impl_[static_cast<int>(d)];
    if (fn == nullptr) {
      throw std::invalid_argument(std::string("convkit op '") + op_name_ + "' has no " + device_name(d) +
                                  " implementation in this build");
    }
    return fn;
  }

 private:
  const char* op_name_;
  std::array<Fn, kNumDevices> impl_{};
};

// All operands of one op must live on one device.
template <class... Devices>
Device common_device(const char* op_name, Device first, Devices... rest) {
  for (Device d : {rest...}) {
    if (d != first) {
      throw std::invalid_argument(std::string("convkit op '") + op_name + "' got operands on " +
                                  device_name(first) + " and " + device_name(d) + "; move them to one device");
    }
  }
  return first;
}

}  // namespace convkit
