// The header's inline function is the whole target; SwiftPM wants one source file per C target.
#include "precis_spin.h"
