// SPDX-License-Identifier: GPL-2.0-only
#include "suites.h"

int run_account_tests(void)
{
	return 0;
}
