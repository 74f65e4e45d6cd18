#include "CNetSNMP.h"
