// Lets `tsc --noEmit` accept the theme's .vue import (Vite compiles the component itself).
declare module '*.vue' {
  import type { DefineComponent } from 'vue';

  const component: DefineComponent<object, object, unknown>;
  export default component;
}
