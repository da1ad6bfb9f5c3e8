/** Load-test harness for context-memory (scenarios arrive with the load-test issue). */
package dev.contextmemory.loadtest;
