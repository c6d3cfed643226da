#pragma once

namespace convkit {

template <class T> constexpr const char* dtype_name();
template <> constexpr const char* dtype_name<float>() { return "f32"; }
template <> constexpr const char* dtype_name<double>() { return "f64"; }

}  // namespace convkit
