// SIGINT/SIGTERM during training: the first signal asks the loop to stop after the current step
// (and save); the handler is then reset so a second Ctrl-C ends the process at once.
#pragma once

namespace attnzoo::engine {

class StopSignal {
 public:
  // Installs the handlers for the lifetime of the object (restores the previous ones after).
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool requested() const;
  int signal() const;  // the signal received, 0 if none
  void clear();        // forget a received signal (tests)
};

}  // namespace attnzoo::engine
